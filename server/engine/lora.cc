#include "server/engine/lora.h"

#include <cmath>
#include <utility>

#include "server/engine/segmented_lora.h"

namespace attune::engine {

double LoraScale(const LoraSettings& settings) {
  return settings.use_rslora ? settings.alpha / std::sqrt(static_cast<double>(settings.rank))
                             : settings.alpha / settings.rank;
}

AdaptedLinearImpl::AdaptedLinearImpl(torch::Tensor weight, torch::Tensor bias, AdapterKind kind,
                                     const LoraSettings& settings, torch::Generator* generator)
    : kind_(kind) {
  const bool full = kind == AdapterKind::kFull;
  if (full) {
    weight = weight.to(torch::kFloat32);
    if (bias.defined()) bias = bias.to(torch::kFloat32);
  }
  weight_ = register_parameter("weight", weight.detach(), /*requires_grad=*/full);
  if (bias.defined()) bias_ = register_parameter("bias", bias.detach(), /*requires_grad=*/full);
  if (kind != AdapterKind::kLora && kind != AdapterKind::kDora) return;

  const int64_t out = weight.size(0);
  const int64_t in = weight.size(1);
  // kaiming_uniform_(a=sqrt(5)): gain = sqrt(2 / (1 + 5)), bound = gain * sqrt(3 / fan_in).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  torch::Tensor a = torch::empty({settings.rank, in}, torch::kFloat32);
  a.uniform_(-bound, bound, *generator);
  lora_a_ = register_parameter("lora_A", a.to(weight.device()), /*requires_grad=*/true);
  lora_b_ = register_parameter(
      "lora_B", torch::zeros({out, settings.rank}, torch::TensorOptions().device(weight.device())),
      /*requires_grad=*/true);
  scale_ = LoraScale(settings);
  dropout_ = settings.dropout;
  if (kind != AdapterKind::kDora) return;
  // PEFT's init: the norm of W + scale * B A at B = 0, i.e. of W itself.
  magnitude_ =
      register_parameter("lora_magnitude_vector", DoraWeightNorm(weight_, lora_a_, lora_b_, scale_),
                         /*requires_grad=*/true);
}

torch::Tensor AdaptedLinearImpl::forward(const torch::Tensor& x) {
  // The input is cast once, to the frozen weight's dtype, and the adapter reads the same copy:
  // A and B (tiny) are cast to it, never the activations again. Under CUDA autocast both products
  // run in bf16 either way; on the CPU everything is fp32.
  const torch::Tensor xw = x.to(weight_.scalar_type());
  if (const GroupSite* group = ActiveGroupSite(this)) {
    return AddGroupAdapters(xw, torch::linear(xw, weight_, bias_), ActiveAdapterGroup()->rows,
                            *group, is_training());
  }
  if (kind_ == AdapterKind::kNone || kind_ == AdapterKind::kFull) {
    return torch::linear(xw, weight_, bias_);
  }
  torch::Tensor h = xw;
  if (dropout_ > 0 && is_training()) h = torch::dropout(h, dropout_, /*train=*/true);
  if (kind_ == AdapterKind::kDora) {
    return DoraOutput(xw, h, weight_, bias_, lora_a_, lora_b_, magnitude_, scale_);
  }
  torch::Tensor y = torch::linear(xw, weight_, bias_);
  const auto dtype = h.scalar_type();
  torch::Tensor delta =
      torch::linear(torch::linear(h, lora_a_.to(dtype)), lora_b_.to(dtype)) * scale_;
  return y + delta.to(y.scalar_type());
}

torch::Tensor DoraWeightNorm(const torch::Tensor& weight, const torch::Tensor& a,
                             const torch::Tensor& b, double scale) {
  torch::NoGradGuard no_grad;
  const torch::Tensor w = weight.to(torch::kFloat32) + scale * torch::matmul(b, a);
  return w.norm(2, {1}).detach();  // torch.linalg.norm(w, dim=1), as PEFT
}

torch::Tensor DoraOutput(const torch::Tensor& x, const torch::Tensor& adapter_x,
                         const torch::Tensor& weight, const torch::Tensor& bias,
                         const torch::Tensor& a, const torch::Tensor& b,
                         const torch::Tensor& magnitude, double scale) {
  const auto dtype = x.scalar_type();
  // m / n in fp32 (n detached: only m gets a gradient from it), then in the activations' dtype.
  const torch::Tensor factor = (magnitude / DoraWeightNorm(weight, a, b, scale)).to(dtype);
  const torch::Tensor base = torch::linear(x, weight);  // x W^T, no bias
  // Without dropout PEFT reuses the base output; with it, the dropped input's own product.
  const torch::Tensor adapter_base = adapter_x.is_same(x) ? base : torch::linear(adapter_x, weight);
  const torch::Tensor lora =
      torch::linear(torch::linear(adapter_x, a.to(dtype)), b.to(dtype)) * scale;
  torch::Tensor y = base + (factor - 1) * adapter_base + factor * lora;
  if (bias.defined()) y = y + bias;
  return y;
}

std::vector<TrainableParam> SiteParameters(const std::vector<AdaptedSite>& sites) {
  std::vector<TrainableParam> out;
  for (const AdaptedSite& site : sites) {
    const AdaptedLinearImpl& l = *site.linear;
    if (l.kind() == AdapterKind::kLora || l.kind() == AdapterKind::kDora) {
      const std::string prefix = "base_model.model." + site.module_path;
      out.push_back(
          {prefix + ".lora_A.weight", site.projection, ParamRole::kLoraA, false, l.lora_a()});
      out.push_back(
          {prefix + ".lora_B.weight", site.projection, ParamRole::kLoraB, false, l.lora_b()});
      if (l.kind() == AdapterKind::kDora) {
        out.push_back({prefix + ".lora_magnitude_vector", site.projection,
                       ParamRole::kDoraMagnitude, false, l.magnitude()});
      }
    } else if (l.kind() == AdapterKind::kFull) {
      out.push_back(
          {site.module_path + ".weight", site.projection, ParamRole::kFull, false, l.weight()});
      if (l.bias().defined()) {
        out.push_back(
            {site.module_path + ".bias", site.projection, ParamRole::kFull, true, l.bias()});
      }
    }
  }
  return out;
}

}  // namespace attune::engine
