// Post-processors: add the special tokens around encoded sequences (CLS/SEP, BOS/EOS) and set
// type ids, read from tokenizer.json's "post_processor".
//
// Supported types: RobertaProcessing (<s> A </s></s> B </s>), BertProcessing ([CLS] A [SEP] B
// [SEP]), TemplateProcessing, ByteLevel (no effect on ids) and Sequence. Immutable after
// construction; thread-safe.
#ifndef ATTUNE_SERVER_ENGINE_TOKENIZER_POST_PROCESSOR_H_
#define ATTUNE_SERVER_ENGINE_TOKENIZER_POST_PROCESSOR_H_

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "absl/status/statusor.h"
#include "server/engine/tokenizer/tokenizer.h"

namespace attune::engine::tokenization {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Transforms the encodings of one sequence (size 1) or a pair (size 2); processors that add
  // special tokens merge them into one. The caller concatenates whatever remains.
  virtual void Process(std::vector<Encoding>* encodings, SpecialTokens special) const = 0;
};

// Builds the post-processor described by `config`. Returns nullptr for JSON null,
// INVALID_ARGUMENT naming the type for an unsupported or malformed one.
absl::StatusOr<std::unique_ptr<PostProcessor>> PostProcessorFromJson(const nlohmann::json& config);

}  // namespace attune::engine::tokenization

#endif  // ATTUNE_SERVER_ENGINE_TOKENIZER_POST_PROCESSOR_H_
