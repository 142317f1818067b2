// Transformer models loaded from Hugging Face directories, with adapters on chosen projections.
//
// Internal to the engine (includes LibTorch): only server/engine/*.cc may include this file.
// `LoadModel` builds the architecture named in config.json (BERT/RoBERTa encoders, Llama-family
// decoders), loads the safetensors weights unchanged, freezes everything, then adds the trainable
// parts the spec asks for: LoRA A/B pairs (plus DoRA's magnitudes with Method::kDora, or the
// full matrices with Method::kFull) on the target projections, and the task head.
#ifndef ATTUNE_SERVER_ENGINE_MODEL_H_
#define ATTUNE_SERVER_ENGINE_MODEL_H_

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "server/engine/fused_ops.h"
#include "server/engine/trainer.h"

namespace attune::engine {

class AdaptedLinearImpl;  // lora.h
class FrozenTensorCache;  // frozen_cache.h

enum class ParamRole {
  kLoraA,  // [r, in]
  kLoraB,  // [out, r], starts at zero
  kFull,   // a target projection's own weight (or bias), Method::kFull
  kHead,   // classification / regression head (PEFT's modules_to_save)
  // [out], DoRA's magnitude per output row of a target (Method::kDora)
  kDoraMagnitude,
};

// One trainable tensor, with the names that the optimizer table and the checkpoint writer need.
struct TrainableParam {
  std::string
      name;  // the tensor's key as PEFT saves it, e.g.
             // "base_model.model.roberta.encoder.layer.0.attention.self.query.lora_A.weight";
             // for kFull the base model's own key, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::string projection;  // "q", "v", ... ; empty for kHead
  ParamRole role;
  bool no_decay = false;  // biases and norm weights: no weight decay
  torch::Tensor tensor;   // the parameter itself (requires_grad)
};

struct ModelOptions {
  Task task = Task::kSequenceClassification;
  int num_labels = 2;  // classification; 1 for regression; ignored for causal LM
  std::vector<std::string> targets;
  Method method = Method::kLora;
  int lora_rank = 8;
  double lora_alpha = 16.0;
  double lora_dropout = 0.0;
  bool use_rslora = false;
  torch::Device device = torch::kCPU;
  torch::Dtype frozen_dtype = torch::kFloat32;  // bf16 on CUDA: the frozen base weights
  uint64_t seed = 42;                           // initialises LoRA A and any new head
  // The decoders' RMSNorm, rotary embedding and SwiGLU (fused_ops.h): fused kernels on CUDA,
  // or the reference LibTorch expressions. The CPU always runs the reference.
  Kernels kernels = Kernels::kFused;
  // CUDA: which attention packed batches run (packed_attention.h); kReference kernels above
  // always run the block mask.
  PackedAttentionKernel packed_attention = PackedAttentionKernel::kAuto;
  // config.json and the weights are opened inside these directories (common/confined_file.h);
  // empty = no root restriction (tests, tools). A job's model gets the server's --data-roots.
  std::vector<std::string> data_roots;
  // Shared-base groups: frozen tensors come from (and go into) this cache, so that the members'
  // models hold one copy of the base (frozen_cache.h). Null = the model's own copy.
  std::shared_ptr<FrozenTensorCache> frozen_cache;
};

// How a packed batch lays its examples out (packing.h): several examples per row, each
// attending only to itself, its positions restarting at 0. All tensors are on the model's
// device; `defined()` is false for an ordinary (one example per row) batch.
struct PackedLayout {
  torch::Tensor positions;   // [rows, length] int64: position within the example; 0 on padding
  torch::Tensor segments;    // [rows, length] int64: which segment of its row a token is in
                             // (examples numbered from 0, then the row's padding)
  torch::Tensor cu_seqlens;  // [slots + 1] int32: segment starts in the flattened rows * length
                             // tokens, then rows * length repeated (empty segments), so that
                             // every step of a run has the same shape
  int64_t max_seqlen = 0;    // at least the longest segment (the row length)
  torch::Tensor first;       // [examples] int64: flat index of each example's first token
  torch::Tensor last;        // [examples] int64: flat index of each example's last token
  bool defined() const { return positions.defined(); }
};

class Model {
 public:
  virtual ~Model() = default;

  // input_ids, attention_mask: [batch, seq] int64 on the model's device (mask 1 = real token).
  // An undefined attention_mask means every token is real (no padding): the attention then
  // needs no explicit mask, and fused kernels (flash attention) can run.
  // Returns logits: [batch, num_labels] for classification and regression (taken at the first
  // token for encoders, at the last real token for decoders), [batch, seq, vocab] for causal LM.
  // With a defined `packing` the rows hold several examples (attention stays within each) and
  // classification and regression return [examples, num_labels], pooled at packing.first
  // (encoders) or packing.last (decoders).
  virtual torch::Tensor Forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                const PackedLayout& packing) = 0;
  torch::Tensor Forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
    return Forward(input_ids, attention_mask, PackedLayout());
  }

  // Causal LM training loss: the mean cross-entropy of each next token over the positions whose
  // label is not -100 (labels: [batch, seq] int64, aligned with input_ids; position t's logits
  // predict label t+1; a packed batch has -100 at each example's first token, so no loss
  // crosses an example boundary). Returns a 0-dim fp32 tensor. The default takes Forward's
  // logits; the decoders override it to never hold [batch, seq, vocab] logits (lm_loss.h).
  virtual torch::Tensor CausalLmLoss(const torch::Tensor& input_ids,
                                     const torch::Tensor& attention_mask,
                                     const torch::Tensor& labels, const PackedLayout& packing);
  torch::Tensor CausalLmLoss(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const torch::Tensor& labels) {
    return CausalLmLoss(input_ids, attention_mask, labels, PackedLayout());
  }

  // Shared-base groups (group_run.h) run Forward in two halves, the trunk over every member's
  // rows and each member's head over its own. Trunk: classification and regression: the hidden
  // state each example's head reads, [examples, hidden] (the first token for encoders, the last
  // real token for decoders; packing.first / packing.last when packed); causal LM: the final
  // norm's output [batch, seq, hidden]. HeadLogits(Trunk(...)) is Forward's result for
  // classification and regression; TrunkLmLoss(Trunk(...), labels) is CausalLmLoss's.
  virtual torch::Tensor Trunk(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              const PackedLayout& packing) = 0;
  virtual torch::Tensor HeadLogits(const torch::Tensor& trunk) = 0;
  virtual torch::Tensor TrunkLmLoss(const torch::Tensor& hidden, const torch::Tensor& labels) = 0;

  // Every projection (adapted or frozen), in a fixed order: two models of one architecture and
  // config list theirs alike.
  virtual std::vector<AdaptedLinearImpl*> Projections() = 0;

  // Every trainable tensor, in a fixed order (layer by layer, then the head).
  virtual std::vector<TrainableParam> TrainableParameters() = 0;

  // Training mode turns on dropout (LoRA dropout and the model's own).
  virtual void SetTraining(bool training) = 0;

  // Elements of every parameter: frozen base, adapters and head (as PEFT counts "all params").
  virtual int64_t TotalParameters() const = 0;

  // For adapter_config.json: the model's own module names of the targets ("query", "q_proj"),
  // PEFT's task_type ("SEQ_CLS", "CAUSAL_LM") and modules_to_save ("classifier", "score").
  virtual std::vector<std::string> TargetModuleNames() const = 0;
  virtual std::string PeftTaskType() const = 0;
  virtual std::vector<std::string> ModulesToSave() const = 0;

  // What loading had to make up, for the job's events, naming every tensor made; e.g. "head
  // 'classifier.out_proj' is not in the checkpoint; initialised from the seed:
  // classifier.out_proj.weight (normal, mean 0, std 0.02) and classifier.out_proj.bias (zeros)".
  // Tensors of the checkpoint the task does not use (a MaskedLM's lm_head.*) are ignored.
  // Empty when nothing was made up.
  virtual const std::vector<std::string>& warnings() const = 0;
};

// Architecture facts read from config.json alone (no weights).
struct ModelDescription {
  std::string architecture;                    // config "architectures"[0], e.g. "LlamaForCausalLM"
  std::string model_type;                      // "roberta", "bert", "llama", "qwen2", "mistral"
  std::vector<std::string> supported_targets;  // which of q,k,v,o,gate,up,down exist
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
};

// Reads `model_dir`/config.json, opened inside `data_roots` (as LoadHfConfig). INVALID_ARGUMENT
// for a missing/malformed file, one outside the roots, or an unsupported model_type.
absl::StatusOr<ModelDescription> DescribeModel(const std::string& model_dir,
                                               const std::vector<std::string>& data_roots = {});

// Loads weights (model.safetensors or the sharded index) and builds the model with adapters.
// INVALID_ARGUMENT for unsupported architectures, a target the architecture lacks, or weights
// that do not match config.json (missing key, wrong shape).
absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& model_dir,
                                                 const ModelOptions& options);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_MODEL_H_
