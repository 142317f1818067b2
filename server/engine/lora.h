// A linear layer whose frozen weight can carry a LoRA adapter, or be trained itself. Internal to
// the engine.
//
// Every projection of attune's architectures is an `AdaptedLinear`. Without an adapter it is a
// plain frozen linear layer. With LoRA (Hu et al. 2021) it computes
//
//   y = x W^T + b + scale * dropout(x) A^T B^T,     scale = alpha / r   (alpha / sqrt(r), rsLoRA)
//
// with W [out, in] and b frozen, A [r, in] initialised Kaiming-uniform with a = sqrt(5) (as PEFT
// does: U(-1/sqrt(in), 1/sqrt(in))) and B [out, r] initialised to zero, so the adapted layer
// starts equal to the base layer. Dropout applies only to the adapter's input, and only in
// training mode. With `AdapterKind::kFull` the layer's own W and b train (the paper's "Full FT").
//
// Frozen tensors have requires_grad false, so autograd keeps no gradient buffers for them; they
// may be stored in a lower precision (bf16 on CUDA) while A, B and fully trained weights are fp32.
// The input is cast once to the frozen weight's dtype; the base product and the adapter both read
// that copy (A and B are cast to it, not the activations), and the sum is in the base's dtype
// (under CUDA autocast both run in bf16; on the CPU all is fp32).
#ifndef ATTUNE_SERVER_ENGINE_LORA_H_
#define ATTUNE_SERVER_ENGINE_LORA_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "server/engine/model.h"

namespace attune::engine {

enum class AdapterKind {
  kNone,  // frozen
  kLora,  // frozen W, b plus trainable A, B
  kFull,  // W and b themselves train
};

struct LoraSettings {
  int rank = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  bool use_rslora = false;
};

// alpha / r, or alpha / sqrt(r) with rsLoRA.
double LoraScale(const LoraSettings& settings);

class AdaptedLinearImpl : public torch::nn::Module {
 public:
  // Takes `weight` [out, in] and `bias` [out] (undefined = no bias) as loaded. For kLora draws A
  // from `generator` (a CPU generator, so the draw is the same on every device) and places A
  // and B in fp32 on the weight's device; for kFull converts weight and bias to fp32 trainable
  // parameters. `settings` is read only for kLora.
  AdaptedLinearImpl(torch::Tensor weight, torch::Tensor bias, AdapterKind kind,
                    const LoraSettings& settings, torch::Generator* generator);

  // x: [..., in] -> [..., out].
  torch::Tensor forward(const torch::Tensor& x);

  AdapterKind kind() const { return kind_; }
  const torch::Tensor& weight() const { return weight_; }
  const torch::Tensor& bias() const { return bias_; }      // undefined without bias
  const torch::Tensor& lora_a() const { return lora_a_; }  // undefined unless kLora
  const torch::Tensor& lora_b() const { return lora_b_; }
  double scale() const { return scale_; }

 private:
  // Constant after construction (the tensors' values change only through the optimizer).
  AdapterKind kind_;
  torch::Tensor weight_;
  torch::Tensor bias_;
  torch::Tensor lora_a_;
  torch::Tensor lora_b_;
  double scale_ = 0;
  double dropout_ = 0;
};
TORCH_MODULE(AdaptedLinear);

// A projection in a model, under its Hugging Face module path.
struct AdaptedSite {
  std::string module_path;  // e.g. "roberta.encoder.layer.0.attention.self.query"
  std::string projection;   // "q", ... ; empty for projections that are never targets
  AdaptedLinear linear{nullptr};
};

// The trainable tensors of `sites`, in order, named as PEFT saves them:
// "base_model.model.<module_path>.lora_A.weight" / ".lora_B.weight" for LoRA, and the base
// model's own "<module_path>.weight" / ".bias" for kFull (biases marked no_decay).
std::vector<TrainableParam> SiteParameters(const std::vector<AdaptedSite>& sites);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_LORA_H_
