// BERT and RoBERTa encoders with a sequence-classification (or regression) head, as Hugging
// Face's BertForSequenceClassification and RobertaForSequenceClassification compute them.
// Internal to the engine.
//
// Embeddings (word + position + token type 0, LayerNorm), then post-LayerNorm encoder layers
// (self-attention, exact GELU feed-forward). RoBERTa's position ids start at padding_idx + 1 and
// skip padding tokens; BERT's count from 0. Heads: BERT pools the first token (dense + tanh, the
// frozen `bert.pooler`) and applies `classifier`; RoBERTa applies `classifier.dense` + tanh +
// `classifier.out_proj` to the first token (<s>). Weights load under their HF names
// ("roberta.encoder.layer.0.attention.self.query.weight"). Projections map to targets as
// q,k,v -> attention.self.{query,key,value}, o -> attention.output.dense,
// up -> intermediate.dense, down -> output.dense; there is no gate.
#ifndef ATTUNE_SERVER_ENGINE_ROBERTA_H_
#define ATTUNE_SERVER_ENGINE_ROBERTA_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/engine/hf_config.h"
#include "server/engine/model.h"
#include "server/engine/safetensors_torch.h"

namespace attune::engine {

// True for the model_types this file builds ("bert", "roberta").
bool IsEncoderModelType(const std::string& model_type);

// The projections encoders have: q,k,v,o,up,down.
std::vector<std::string> EncoderProjections();

// Builds the encoder with adapters and head. INVALID_ARGUMENT for causal-LM tasks, a target the
// encoder lacks, an unsupported activation, or weights that are missing or mis-shaped (the
// message names the tensor). A head missing from the checkpoint is initialised and reported in
// warnings().
absl::StatusOr<std::unique_ptr<Model>> LoadEncoder(const HfConfig& config,
                                                   const WeightLoader& weights,
                                                   const ModelOptions& options);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_ROBERTA_H_
