// AdamW over the trainable tensors, with parameter groups built from one table.
//
// Internal to the engine (LibTorch). The table is the seed paper's knob: each target projection
// gets the base learning rate times its ratio (lr_ratios, e.g. v: 4), LoRA B gets that times the
// LoRA+ ratio, and the head gets the base rate:
//
//   lr(projection, A) = lr * lr_ratios[projection]
//   lr(projection, B) = lr * lr_ratios[projection] * loraplus_ratio
//   lr(head)          = lr
//
// Biases and norm weights get no weight decay. The update is PyTorch's AdamW (decoupled weight
// decay, bias-corrected moments), written out here so its state can be saved exactly and the
// many small adapter tensors can be updated with multi-tensor (_foreach) kernels.
#ifndef ATTUNE_SERVER_ENGINE_OPTIMIZER_H_
#define ATTUNE_SERVER_ENGINE_OPTIMIZER_H_

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "server/common/job_spec.h"
#include "server/engine/model.h"

namespace attune::engine {

struct ParamGroup {
  std::string name;         // "v.lora_A", "v.lora_B", "q.full", "head", "head.no_decay"
  double base_lr = 0;       // before the schedule
  double weight_decay = 0;
  std::vector<torch::Tensor> params;
  std::vector<std::string> param_names;  // parallel to params, for saving state
};

// Builds the groups from the spec's table, in a fixed order (by first appearance in `params`).
std::vector<ParamGroup> BuildParamGroups(const std::vector<TrainableParam>& params,
                                         const TrainSpec& spec);

// The schedule's multiplier for the update at 0-based `step` of `total_steps`: linear warmup
// from 0 over `warmup_steps`, then linear decay to 0, half-cosine decay to 0, or constant.
// Matches Hugging Face's get_{linear,cosine,constant}_schedule_with_warmup.
double ScheduleMultiplier(Schedule schedule, int64_t step, int64_t warmup_steps,
                          int64_t total_steps);

class AdamW {
 public:
  AdamW(std::vector<ParamGroup> groups, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8);

  // Applies one update with each group's lr = base_lr * `lr_multiplier`. Gradients must be set.
  void Step(double lr_multiplier);

  // The learning rate each group used in the last Step (or would use at multiplier 1).
  std::map<std::string, double> LearningRates(double lr_multiplier) const;

  // All trainable tensors, for gradient clipping and zeroing.
  const std::vector<torch::Tensor>& Params() const { return all_params_; }
  void ZeroGrad();

  // State for resume: "<param name>.exp_avg" / ".exp_avg_sq" (CPU, fp32) and the step count.
  std::map<std::string, torch::Tensor> StateTensors() const;
  int64_t step_count() const { return step_count_; }
  // Restores state written by StateTensors(); INVALID_ARGUMENT on a missing or misshaped entry.
  absl::Status LoadState(const std::map<std::string, torch::Tensor>& state, int64_t step_count);

  const std::vector<ParamGroup>& groups() const { return groups_; }

 private:
  // Constant after construction.
  std::vector<ParamGroup> groups_;
  std::vector<torch::Tensor> all_params_;
  double beta1_, beta2_, eps_;
  // Changed by Step and LoadState.
  std::vector<std::vector<torch::Tensor>> exp_avg_;     // per group, per param
  std::vector<std::vector<torch::Tensor>> exp_avg_sq_;  // per group, per param
  int64_t step_count_ = 0;
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_OPTIMIZER_H_
