// Tokenizer models: turn one pre-tokenized word into token ids.
//
// BPE (byte-level or not; merges as "a b" strings or [a, b] pairs; ignore_merges as in Llama 3;
// unk_token, fuse_unk, byte_fallback to <0xXX> tokens as in Llama 2, continuing_subword_prefix,
// end_of_word_suffix) and WordPiece (greedy
// longest-match-first with a continuing prefix such as "##"; max_input_chars_per_word; unk).
// Models are immutable after construction apart from BPE's word cache, which is guarded by a
// mutex, so Tokenize is thread-safe.
#ifndef ATTUNE_SERVER_ENGINE_TOKENIZER_VOCAB_MODEL_H_
#define ATTUNE_SERVER_ENGINE_TOKENIZER_VOCAB_MODEL_H_

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace attune::engine::tokenization {

class VocabModel {
 public:
  virtual ~VocabModel() = default;
  // Appends the ids of `word` to `ids`. An empty word adds nothing.
  virtual void Tokenize(std::string_view word, std::vector<int32_t>* ids) const = 0;

  // Vocabulary lookups (model vocabulary only, not added tokens).
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The token for `id`, or nullptr if the model has no such id.
  const std::string* IdToToken(int32_t id) const;
  // One more than the largest id in the vocabulary.
  int64_t Size() const { return static_cast<int64_t>(id_to_token_.size()); }

 protected:
  // Fills vocab_ and id_to_token_ from a {"token": id} object.
  absl::Status LoadVocab(const nlohmann::json& vocab, const std::string& what);

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;  // "" for ids not in the vocabulary
};

// Builds the model described by `config` (tokenizer.json "model"). INVALID_ARGUMENT names the
// unsupported type or the malformed field (e.g. a merge whose parts are not in the vocabulary).
absl::StatusOr<std::unique_ptr<VocabModel>> VocabModelFromJson(const nlohmann::json& config);

}  // namespace attune::engine::tokenization

#endif  // ATTUNE_SERVER_ENGINE_TOKENIZER_VOCAB_MODEL_H_
