// Pre-tokenizers: split normalized text into the words that the model tokenizes separately.
//
// Supported types (Hugging Face names): Metaspace (replacement, prepend_scheme, split), ByteLevel
// (add_prefix_space, use_regex with GPT-2's pattern; maps bytes to GPT-2's alphabet), Split (String
// or Regex pattern; behavior Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous;
// invert), BertPreTokenizer, Whitespace, WhitespaceSplit, Digits, Punctuation, Sequence. Empty
// pieces are always dropped, as in Hugging Face. Pre-tokenizers are immutable after construction
// and thread-safe.
#ifndef ATTUNE_SERVER_ENGINE_TOKENIZER_PRE_TOKENIZER_H_
#define ATTUNE_SERVER_ENGINE_TOKENIZER_PRE_TOKENIZER_H_

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attune::engine::tokenization {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces each piece of `pieces` by the pieces it splits into, in order.
  // `first_starts_text` says whether pieces[0] begins the input text (Metaspace's
  // prepend_scheme "first" only prefixes that piece).
  virtual void PreTokenize(std::vector<std::string>* pieces, bool first_starts_text) const = 0;
};

// Builds the pre-tokenizer described by `config` (tokenizer.json "pre_tokenizer"). Returns
// nullptr for JSON null, INVALID_ARGUMENT naming the type for an unsupported or malformed one.
absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizerFromJson(const nlohmann::json& config);

}  // namespace attune::engine::tokenization

#endif  // ATTUNE_SERVER_ENGINE_TOKENIZER_PRE_TOKENIZER_H_
