// Normalizers: the first stage of the tokenizer pipeline, read from tokenizer.json's "normalizer".
//
// Supported types (Hugging Face names): Sequence, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents,
// BertNormalizer, Prepend, Replace, Strip. Normalizers see only the text between added tokens
// (see added_vocabulary.h). They are immutable after construction and thread-safe.
#ifndef ATTUNE_SERVER_ENGINE_TOKENIZER_NORMALIZER_H_
#define ATTUNE_SERVER_ENGINE_TOKENIZER_NORMALIZER_H_

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace attune::engine::tokenization {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Returns the normalized form of `text`.
  virtual std::string Normalize(std::string_view text) const = 0;
};

// Builds the normalizer described by `config` (a tokenizer.json "normalizer" object). Returns
// nullptr for JSON null, and INVALID_ARGUMENT naming the type for an unsupported or malformed one.
absl::StatusOr<std::unique_ptr<Normalizer>> NormalizerFromJson(const nlohmann::json& config);

}  // namespace attune::engine::tokenization

#endif  // ATTUNE_SERVER_ENGINE_TOKENIZER_NORMALIZER_H_
