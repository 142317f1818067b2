#include "server/engine/lora.h"

#include <cmath>
#include <utility>

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
  if (kind != AdapterKind::kLora) return;

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
}

torch::Tensor AdaptedLinearImpl::forward(const torch::Tensor& x) {
  // The input is cast once, to the frozen weight's dtype, and the adapter reads the same copy:
  // A and B (tiny) are cast to it, never the activations again. Under CUDA autocast both products
  // run in bf16 either way; on the CPU everything is fp32.
  const torch::Tensor xw = x.to(weight_.scalar_type());
  torch::Tensor y = torch::linear(xw, weight_, bias_);
  if (kind_ != AdapterKind::kLora) return y;
  torch::Tensor h = xw;
  if (dropout_ > 0 && is_training()) h = torch::dropout(h, dropout_, /*train=*/true);
  const auto dtype = h.scalar_type();
  torch::Tensor delta =
      torch::linear(torch::linear(h, lora_a_.to(dtype)), lora_b_.to(dtype)) * scale_;
  return y + delta.to(y.scalar_type());
}

std::vector<TrainableParam> SiteParameters(const std::vector<AdaptedSite>& sites) {
  std::vector<TrainableParam> out;
  for (const AdaptedSite& site : sites) {
    const AdaptedLinearImpl& l = *site.linear;
    if (l.kind() == AdapterKind::kLora) {
      const std::string prefix = "base_model.model." + site.module_path;
      out.push_back(
          {prefix + ".lora_A.weight", site.projection, ParamRole::kLoraA, false, l.lora_a()});
      out.push_back(
          {prefix + ".lora_B.weight", site.projection, ParamRole::kLoraB, false, l.lora_b()});
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
