#include "server/engine/optimizer.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace attune::engine {
namespace {

std::string GroupName(const TrainableParam& p) {
  std::string name;
  switch (p.role) {
    case ParamRole::kLoraA: name = p.projection + ".lora_A"; break;
    case ParamRole::kLoraB: name = p.projection + ".lora_B"; break;
    case ParamRole::kFull: name = p.projection + ".full"; break;
    case ParamRole::kHead: name = "head"; break;
  }
  if (p.no_decay) name += ".no_decay";
  return name;
}

double GroupLr(const TrainableParam& p, const TrainSpec& spec) {
  if (p.role == ParamRole::kHead) return spec.learning_rate;
  double lr = spec.learning_rate;
  auto it = spec.lr_ratios.find(p.projection);
  if (it != spec.lr_ratios.end()) lr *= it->second;
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
    case Schedule::kConstant: return 1.0;
    case Schedule::kLinear: return std::max(0.0, 1.0 - progress);
    case Schedule::kCosine: return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  }
  return 1.0;
}

AdamW::AdamW(std::vector<ParamGroup> groups, double beta1, double beta2, double eps)
    : groups_(std::move(groups)), beta1_(beta1), beta2_(beta2), eps_(eps) {
  torch::NoGradGuard no_grad;
  for (const ParamGroup& g : groups_) {
    std::vector<torch::Tensor> m, v;
    for (const torch::Tensor& p : g.params) {
      all_params_.push_back(p);
      m.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      v.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    }
    exp_avg_.push_back(std::move(m));
    exp_avg_sq_.push_back(std::move(v));
  }
}

void AdamW::Step(double lr_multiplier) {
  torch::NoGradGuard no_grad;
  ++step_count_;
  const double bias_correction1 = 1.0 - std::pow(beta1_, static_cast<double>(step_count_));
  const double bias_correction2 = 1.0 - std::pow(beta2_, static_cast<double>(step_count_));
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& g = groups_[gi];
    const double lr = g.base_lr * lr_multiplier;
    const double step_size = lr / bias_correction1;
    for (size_t pi = 0; pi < g.params.size(); ++pi) {
      torch::Tensor p = g.params[pi];
      const torch::Tensor& grad = p.grad();
      if (!grad.defined()) continue;
      torch::Tensor& m = exp_avg_[gi][pi];
      torch::Tensor& v = exp_avg_sq_[gi][pi];
      if (g.weight_decay != 0) p.mul_(1.0 - lr * g.weight_decay);
      m.lerp_(grad, 1.0 - beta1_);
      v.mul_(beta2_).addcmul_(grad, grad, 1.0 - beta2_);
      torch::Tensor denom = (v.sqrt() / bias_correction2_sqrt).add_(eps_);
      p.addcdiv_(m, denom, -step_size);
    }
  }
}

std::map<std::string, double> AdamW::LearningRates(double lr_multiplier) const {
  std::map<std::string, double> lrs;
  for (const ParamGroup& g : groups_) lrs[g.name] = g.base_lr * lr_multiplier;
  return lrs;
}

void AdamW::ZeroGrad() {
  for (torch::Tensor& p : all_params_) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

std::map<std::string, torch::Tensor> AdamW::StateTensors() const {
  std::map<std::string, torch::Tensor> state;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      const std::string& name = groups_[gi].param_names[pi];
      state[name + ".exp_avg"] = exp_avg_[gi][pi].detach().to(torch::kCPU).contiguous();
      state[name + ".exp_avg_sq"] = exp_avg_sq_[gi][pi].detach().to(torch::kCPU).contiguous();
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
      for (auto [suffix, target] : {std::pair{".exp_avg", &exp_avg_[gi][pi]},
                                    std::pair{".exp_avg_sq", &exp_avg_sq_[gi][pi]}}) {
        auto it = state.find(name + suffix);
        if (it == state.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat("resume state: missing optimizer tensor ", name, suffix));
        }
        if (it->second.sizes() != target->sizes()) {
          return absl::InvalidArgumentError(
              absl::StrCat("resume state: optimizer tensor ", name, suffix, " has the wrong shape"));
        }
        target->copy_(it->second);
      }
    }
  }
  step_count_ = step_count;
  return absl::OkStatus();
}

}  // namespace attune::engine
