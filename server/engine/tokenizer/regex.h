// A compiled PCRE2 regular expression used by the Split and ByteLevel pre-tokenizers.
//
// Hugging Face `tokenizers` uses Oniguruma; the patterns found in tokenizer.json files (GPT-2,
// Llama 3, Qwen2: `\p{L}`, `\p{N}`, `(?i:'s|...)`, `\s+(?!\S)`) mean the same in PCRE2 with the
// UTF and UCP options, which this class always sets. A Regex is immutable after construction and
// safe to use from several threads at once (each call allocates its own match data).
#ifndef ATTUNE_SERVER_ENGINE_TOKENIZER_REGEX_H_
#define ATTUNE_SERVER_ENGINE_TOKENIZER_REGEX_H_

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace attune::engine::tokenization {

class Regex {
 public:
  // Compiles `pattern` (UTF-8). INVALID_ARGUMENT with PCRE2's message and offset on a bad pattern.
  static absl::StatusOr<std::unique_ptr<Regex>> Create(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Returns the byte ranges [start, end) of all non-overlapping matches, left to right. After an
  // empty match the search resumes one character later.
  std::vector<std::pair<size_t, size_t>> FindAll(std::string_view text) const;

 private:
  explicit Regex(pcre2_code* code) : code_(code) {}
  pcre2_code* code_;  // owned; constant after construction
};

// Escapes `literal` so that it matches itself as a PCRE2 pattern.
std::string QuoteRegex(std::string_view literal);

}  // namespace attune::engine::tokenization

#endif  // ATTUNE_SERVER_ENGINE_TOKENIZER_REGEX_H_
