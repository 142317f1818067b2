#include "server/engine/optimizer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace attune::engine {
namespace {

std::string GroupName(const TrainableParam& p) {
  std::string name;
  switch (p.role) {
    case ParamRole::kLoraA:
      name = p.projection + ".lora_A";
      break;
    case ParamRole::kLoraB:
      name = p.projection + ".lora_B";
      break;
    case ParamRole::kDoraMagnitude:
      name = p.projection + ".lora_magnitude";
      break;
    case ParamRole::kFull:
      name = p.projection + ".full";
      break;
    case ParamRole::kHead:
      name = "head";
      break;
  }
  if (p.no_decay) name += ".no_decay";
  return name;
}

double GroupLr(const TrainableParam& p, const TrainSpec& spec) {
  if (p.role == ParamRole::kHead) return spec.learning_rate;
  double lr = spec.learning_rate;
  auto it = spec.lr_ratios.find(p.projection);
  if (it != spec.lr_ratios.end()) lr *= it->second;
  // LoRA+ (Hayou et al. 2024) speeds up B relative to A because of how the product B A learns
  // features; DoRA's magnitude is no factor of that product but a per-row scale of the whole
  // W + scale*BA, so it trains at its projection's rate, as A does, and never at B's. (PEFT's
  // create_loraplus_optimizer would put it with B, by a catch-all for 1-D tensors aimed at
  // biases; we do not, so that loraplus_ratio changes only B and the lr_ratios compare alike.)
  if (p.role == ParamRole::kLoraB) lr *= spec.loraplus_ratio;
  return lr;
}

}  // namespace

std::vector<ParamGroup> BuildParamGroups(const std::vector<TrainableParam>& params,
                                         const TrainSpec& spec) {
  std::vector<ParamGroup> groups;
  std::map<std::string, size_t> index;
  for (const TrainableParam& p : params) {
    const std::string name = GroupName(p);
    auto [it, inserted] = index.emplace(name, groups.size());
    if (inserted) {
      ParamGroup g;
      g.name = name;
      g.base_lr = GroupLr(p, spec);
      g.weight_decay = p.no_decay ? 0.0 : spec.weight_decay;
      groups.push_back(std::move(g));
    }
    groups[it->second].params.push_back(p.tensor);
    groups[it->second].param_names.push_back(p.name);
  }
  return groups;
}

double ScheduleMultiplier(Schedule schedule, int64_t step, int64_t warmup_steps,
                          int64_t total_steps) {
  if (step < warmup_steps) {
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  }
  const double decay_steps = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double progress = static_cast<double>(step - warmup_steps) / decay_steps;
  switch (schedule) {
    case Schedule::kConstant:
      return 1.0;
    case Schedule::kLinear:
      return std::max(0.0, 1.0 - progress);
    case Schedule::kCosine:
      return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  }
  return 1.0;
}

AdamW::AdamW(std::vector<ParamGroup> groups, double beta1, double beta2, double eps)
    : groups_(std::move(groups)), beta1_(beta1), beta2_(beta2), eps_(eps) {
  torch::NoGradGuard no_grad;
  int64_t total = 0;
  torch::Device device = torch::kCPU;
  std::vector<float> lr, lr_decay;
  bool any_decay = false;
  for (const ParamGroup& g : groups_) {
    for (const torch::Tensor& p : g.params) {
      if (total == 0) device = p.device();
      TORCH_CHECK(p.scalar_type() == torch::kFloat32 && p.device() == device,
                  "AdamW: every trainable tensor must be fp32 on one device");
      all_params_.push_back(p);
      total += p.numel();
      lr.insert(lr.end(), p.numel(), static_cast<float>(g.base_lr));
      lr_decay.insert(lr_decay.end(), p.numel(), static_cast<float>(g.base_lr * g.weight_decay));
      any_decay = any_decay || g.weight_decay != 0;
    }
  }
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  param_ = torch::empty({total}, options);
  grad_ = torch::zeros({total}, options);
  exp_avg_ = torch::zeros({total}, options);
  exp_avg_sq_ = torch::zeros({total}, options);
  lr_ = torch::tensor(lr, torch::kFloat32).to(device);
  if (any_decay) lr_decay_ = torch::tensor(lr_decay, torch::kFloat32).to(device);
  steps_ = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  lr_multiplier_ = torch::ones({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  int64_t offset = 0;
  for (const ParamGroup& g : groups_) {
    std::vector<torch::Tensor> m, v;
    for (const torch::Tensor& p : g.params) {
      const int64_t n = p.numel();
      torch::Tensor view = param_.narrow(0, offset, n).view(p.sizes());
      view.copy_(p.detach());
      // The same TensorImpl now holds a view of param_: every handle to it sees the buffer.
      torch::Tensor handle = p;
      handle.set_data(view);
      torch::Tensor grad = grad_.narrow(0, offset, n).view(p.sizes());
      handle.mutable_grad() = grad;
      grad_views_.push_back(grad);
      m.push_back(exp_avg_.narrow(0, offset, n).view(p.sizes()));
      v.push_back(exp_avg_sq_.narrow(0, offset, n).view(p.sizes()));
      offset += n;
    }
    exp_avg_views_.push_back(std::move(m));
    exp_avg_sq_views_.push_back(std::move(v));
  }
}

void AdamW::GatherGrads() {
  for (size_t i = 0; i < all_params_.size(); ++i) {
    torch::Tensor p = all_params_[i];
    const torch::Tensor& grad = p.grad();
    if (grad.defined() && grad.data_ptr() == grad_views_[i].data_ptr()) continue;
    if (grad.defined()) {
      grad_views_[i].copy_(grad);
    } else {
      grad_views_[i].zero_();
    }
    p.mutable_grad() = grad_views_[i];
  }
}

torch::Tensor AdamW::GradNorm() {
  torch::NoGradGuard no_grad;
  GatherGrads();
  return grad_.norm(2);
}

torch::Tensor AdamW::FlatGradients() {
  torch::NoGradGuard no_grad;
  GatherGrads();
  return grad_;
}

void AdamW::ClipGradients(const torch::Tensor& norm, double max_norm) {
  if (max_norm <= 0) return;
  torch::NoGradGuard no_grad;
  GatherGrads();
  // The norm is fp32, and a double scalar beyond fp32's range does not convert ("value cannot be
  // converted to type float without overflow"); a threshold that large never clips anyway.
  const double bound = std::min(max_norm, double{std::numeric_limits<float>::max()});
  grad_.mul_(torch::clamp_max(bound / (norm + 1e-6), 1.0));
}

void AdamW::Step(double lr_multiplier, const torch::Tensor& apply) {
  SetLrMultiplier(lr_multiplier);
  Update(apply);
}

void AdamW::SetLrMultiplier(double lr_multiplier) {
  torch::NoGradGuard no_grad;
  lr_multiplier_.fill_(lr_multiplier);  // a kernel argument: no host-to-device copy
}

void AdamW::Update(const torch::Tensor& apply) {
  torch::NoGradGuard no_grad;
  GatherGrads();
  if (apply.defined()) {
    steps_.add_(apply.to(torch::kFloat64));
  } else {
    steps_.add_(1.0);
  }
  // Bias corrections from the device-side count (0-dim fp64; a skipped first step divides by
  // zero here, and torch::where below discards that result).
  const torch::Tensor bias_correction1 = 1.0 - torch::pow(beta1_, steps_);
  const torch::Tensor bias_correction2_sqrt = (1.0 - torch::pow(beta2_, steps_)).sqrt();
  torch::Tensor m = exp_avg_.lerp(grad_, 1.0 - beta1_);
  torch::Tensor v = exp_avg_sq_.mul(beta2_).addcmul_(grad_, grad_, 1.0 - beta2_);
  torch::Tensor denom = (v.sqrt() / bias_correction2_sqrt).add_(eps_);
  torch::Tensor update = (m / denom).mul_(lr_).mul_(lr_multiplier_ / bias_correction1);
  torch::Tensor p = lr_decay_.defined() ? param_ * (1.0 - lr_decay_ * lr_multiplier_) : param_;
  p = p - update;
  if (apply.defined()) {
    p = torch::where(apply, p, param_);
    m = torch::where(apply, m, exp_avg_);
    v = torch::where(apply, v, exp_avg_sq_);
  }
  param_.copy_(p);
  exp_avg_.copy_(m);
  exp_avg_sq_.copy_(v);
}

std::map<std::string, double> AdamW::LearningRates(double lr_multiplier) const {
  std::map<std::string, double> lrs;
  for (const ParamGroup& g : groups_) lrs[g.name] = g.base_lr * lr_multiplier;
  return lrs;
}

void AdamW::ZeroGrad() {
  torch::NoGradGuard no_grad;
  grad_.zero_();
  GatherGrads();
}

int64_t AdamW::step_count() const { return static_cast<int64_t>(steps_.item<double>()); }

std::map<std::string, torch::Tensor> AdamW::StateTensors() const {
  std::map<std::string, torch::Tensor> state;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      const std::string& name = groups_[gi].param_names[pi];
      state[name + ".exp_avg"] = exp_avg_views_[gi][pi].detach().to(torch::kCPU).contiguous();
      state[name + ".exp_avg_sq"] = exp_avg_sq_views_[gi][pi].detach().to(torch::kCPU).contiguous();
    }
  }
  return state;
}

absl::Status AdamW::LoadState(const std::map<std::string, torch::Tensor>& state,
                              int64_t step_count) {
  torch::NoGradGuard no_grad;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      const std::string& name = groups_[gi].param_names[pi];
      for (auto [suffix, target] : {std::pair{".exp_avg", &exp_avg_views_[gi][pi]},
                                    std::pair{".exp_avg_sq", &exp_avg_sq_views_[gi][pi]}}) {
        auto it = state.find(name + suffix);
        if (it == state.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat("resume state: missing optimizer tensor ", name, suffix));
        }
        if (it->second.sizes() != target->sizes()) {
          return absl::InvalidArgumentError(absl::StrCat("resume state: optimizer tensor ", name,
                                                         suffix, " has the wrong shape"));
        }
        target->copy_(it->second);
      }
    }
  }
  steps_.fill_(static_cast<double>(step_count));
  return absl::OkStatus();
}

}  // namespace attune::engine
