// Llama-family decoders (Llama 2/3, Qwen2, Mistral) for causal-LM fine-tuning and sequence
// classification, as Hugging Face's *ForCausalLM and *ForSequenceClassification compute them.
// Internal to the engine.
//
// Pre-norm layers: RMSNorm, grouped-query self-attention with rotary position embeddings (rope
// theta, `linear` and `llama3` scaling, head_dim from config.json when given), a causal mask
// combined with the padding mask, RMSNorm, SwiGLU MLP (down(silu(gate(x)) * up(x))). Qwen2 has
// biases on q, k and v; Llama's `attention_bias` / `mlp_bias` are honoured. The causal-LM head is
// `lm_head` or, with tie_word_embeddings, the token embedding. Classification applies `score`
// (no bias) at the last non-padding token of each row. Positions count from 0 at the first token,
// so batches must be right-padded (as attune's data pipeline pads them).
// Targets: q,k,v,o -> self_attn.{q,k,v,o}_proj; gate, up, down -> mlp.{gate,up,down}_proj.
#ifndef ATTUNE_SERVER_ENGINE_LLAMA_H_
#define ATTUNE_SERVER_ENGINE_LLAMA_H_

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/engine/hf_config.h"
#include "server/engine/model.h"
#include "server/engine/safetensors_torch.h"

namespace attune::engine {

// All seven: q,k,v,o,gate,up,down.
std::vector<std::string> DecoderProjections();

// The rotary inverse frequencies [head_dim / 2] (fp32, CPU) for `rope` as transformers computes
// them: theta^(-2i/d), divided by `factor` for linear scaling, and llama3's wavelength-dependent
// interpolation between the two.
torch::Tensor RopeInverseFrequencies(const RopeConfig& rope, int64_t head_dim);

// Builds the decoder with adapters and head. INVALID_ARGUMENT for an unknown target, an
// unsupported activation, or weights that are missing or mis-shaped (the message names the
// tensor). A classification head missing from the checkpoint is initialised and reported in
// warnings().
absl::StatusOr<std::unique_ptr<Model>> LoadDecoder(const HfConfig& config,
                                                   const WeightLoader& weights,
                                                   const ModelOptions& options);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_LLAMA_H_
