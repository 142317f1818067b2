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
// With DoRA (`AdapterKind::kDora`; Liu et al. 2024, arXiv 2402.09353) the layer also trains a
// magnitude m [out], one per output row, and computes what PEFT 0.21's DoraLinearLayer does:
//
//   n = ||W + scale * B A||_row           L2 norm of each output row, detached (no gradient)
//   y = x W^T + b + (m / n - 1) * (x' W^T) + (m / n) * scale * x' A^T B^T
//
// where x' = dropout(x) in training with dropout > 0, else x' = x. Without dropout that is
// y = x (m/n * (W + scale * B A))^T + b: the direction W + scale*BA normalised per row, times m,
// and the bias is not rescaled. With dropout, PEFT's formula (above) keeps the undropped base
// output and rescales only the dropped copy; we follow it. The norm is detached as the paper's
// section 4.3 and PEFT do, so m and A, B get their gradients only through the two products.
// m starts at ||W||_row (the norm at B = 0), so the layer starts equal to the base layer; A and
// B start as for LoRA (the same random draw). The norm and m / n are computed in fp32.
//
// Frozen tensors have requires_grad false, so autograd keeps no gradient buffers for them; they
// may be stored in a lower precision (bf16 on CUDA) while A, B and fully trained weights are fp32.
// The input is cast once to the frozen weight's dtype; the base product and the adapter both read
// that copy (A and B are cast to it, not the activations), and the sum is in the base's dtype
// (under CUDA autocast both run in bf16; on the CPU all is fp32).
//
// Inside an AdapterGroupScope (segmented_lora.h) the layer is a shared-base group's driver: its
// frozen product runs over every member's rows, and each member's own adapter adds to its rows.
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
  kDora,  // kLora plus a trainable magnitude m [out]
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
  // Takes `weight` [out, in] and `bias` [out] (undefined = no bias) as loaded. For kLora and
  // kDora draws A from `generator` (a CPU generator, so the draw is the same on every device)
  // and places A and B (and kDora's magnitude) in fp32 on the weight's device; for kFull
  // converts weight and bias to fp32 trainable parameters. `settings` is read only for kLora
  // and kDora.
  AdaptedLinearImpl(torch::Tensor weight, torch::Tensor bias, AdapterKind kind,
                    const LoraSettings& settings, torch::Generator* generator);

  // x: [..., in] -> [..., out].
  torch::Tensor forward(const torch::Tensor& x);

  AdapterKind kind() const { return kind_; }
  const torch::Tensor& weight() const { return weight_; }
  const torch::Tensor& bias() const { return bias_; }      // undefined without bias
  const torch::Tensor& lora_a() const { return lora_a_; }  // undefined unless kLora, kDora
  const torch::Tensor& lora_b() const { return lora_b_; }
  const torch::Tensor& magnitude() const { return magnitude_; }  // undefined unless kDora
  double scale() const { return scale_; }
  double dropout() const { return dropout_; }  // LoRA dropout; 0 unless kLora, kDora

 private:
  // Constant after construction (the tensors' values change only through the optimizer).
  AdapterKind kind_;
  torch::Tensor weight_;
  torch::Tensor bias_;
  torch::Tensor lora_a_;
  torch::Tensor lora_b_;
  torch::Tensor magnitude_;
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

// ||weight + scale * b a||_row in fp32, detached: DoRA's n [out] for weight [out, in],
// a [r, in] and b [out, r].
torch::Tensor DoraWeightNorm(const torch::Tensor& weight, const torch::Tensor& a,
                             const torch::Tensor& b, double scale);

// DoRA's output (the formula above) for input `x` [..., in] whose adapter input is `adapter_x`
// (the same tensor as `x` without dropout, else dropout(x)); x, adapter_x, weight and bias share
// one dtype, and a, b, magnitude are fp32 (cast to it). Gradients reach x, a, b and magnitude.
torch::Tensor DoraOutput(const torch::Tensor& x, const torch::Tensor& adapter_x,
                         const torch::Tensor& weight, const torch::Tensor& bias,
                         const torch::Tensor& a, const torch::Tensor& b,
                         const torch::Tensor& magnitude, double scale);

// The trainable tensors of `sites`, in order, named as PEFT saves them:
// "base_model.model.<module_path>.lora_A.weight" / ".lora_B.weight" for LoRA and DoRA, plus
// ".lora_magnitude_vector" (PEFT 0.21 saves it without ".weight") for DoRA, and the base
// model's own "<module_path>.weight" / ".bias" for kFull (biases marked no_decay). The
// magnitude is not marked no_decay: Hugging Face's Trainer exempts only biases and norms.
std::vector<TrainableParam> SiteParameters(const std::vector<AdaptedSite>& sites);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_LORA_H_
