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
// many small adapter tensors are updated together.
//
// Flat buffers: the constructor moves every trainable tensor into one contiguous fp32 buffer (each
// parameter becomes a view of it, through set_data, so the model's own handles see the same
// storage), and gives each a gradient that is a view of one gradient buffer (autograd then
// accumulates into it in place). The moments are views of two more buffers, and each element's
// learning rate and weight decay come from two per-element tables. A step is then about fifteen
// kernels over the whole buffer whatever the number of tensors (a 1.1B model with q,v adapters has
// 88), the gradient norm one reduction, and nothing is read back to the host: whether a step is
// applied (finite loss and gradients) is decided on the device.
#ifndef ATTUNE_SERVER_ENGINE_OPTIMIZER_H_
#define ATTUNE_SERVER_ENGINE_OPTIMIZER_H_

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "common/job_spec.h"
#include "server/engine/model.h"

namespace attune::engine {

struct ParamGroup {
  std::string name;    // "v.lora_A", "v.lora_B", "q.full", "head", "head.no_decay"
  double base_lr = 0;  // before the schedule
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
  // Every tensor in `groups` must be a distinct fp32 leaf on one device that requires grad; their
  // values move into the flat buffer (see above). Not thread-safe: one training thread.
  AdamW(std::vector<ParamGroup> groups, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8);

  // The global L2 norm of the gradients: a 0-dim fp32 tensor on the parameters' device, not read
  // back. A parameter whose gradient is undefined counts as a zero gradient.
  torch::Tensor GradNorm();

  // The flat buffers every parameter and gradient is a view of (the gradients gathered first),
  // for collectives that change them in place (data_parallel.h): [n] fp32 on the device.
  torch::Tensor FlatGradients();
  torch::Tensor FlatParameters() const { return param_; }

  // Scales every gradient by min(1, max_norm / (norm + 1e-6)), computed on the device from
  // `norm` (GradNorm()'s result). No-op when max_norm <= 0.
  void ClipGradients(const torch::Tensor& norm, double max_norm);

  // Applies one update with each group's lr = base_lr * `lr_multiplier`. When `apply` (a 0-dim
  // bool tensor on the device) is given and false, the parameters, moments and step count stay
  // as they were (a skipped step), decided on the device without a host sync.
  void Step(double lr_multiplier, const torch::Tensor& apply = torch::Tensor());

  // Step split in two for CUDA graphs: SetLrMultiplier writes the multiplier into a device
  // scalar (outside the graph, before each replay); Update reads it (inside the graph).
  void SetLrMultiplier(double lr_multiplier);
  void Update(const torch::Tensor& apply = torch::Tensor());

  // The learning rate each group used in the last Step (or would use at multiplier 1).
  std::map<std::string, double> LearningRates(double lr_multiplier) const;

  // All trainable tensors.
  const std::vector<torch::Tensor>& Params() const { return all_params_; }
  // Sets every gradient to zero (they stay views of the gradient buffer).
  void ZeroGrad();

  // State for resume: "<param name>.exp_avg" / ".exp_avg_sq" (CPU, fp32) and the step count
  // (applied steps; reads the device).
  std::map<std::string, torch::Tensor> StateTensors() const;
  int64_t step_count() const;
  // Restores state written by StateTensors(); INVALID_ARGUMENT on a missing or misshaped entry.
  absl::Status LoadState(const std::map<std::string, torch::Tensor>& state, int64_t step_count);

  const std::vector<ParamGroup>& groups() const { return groups_; }

 private:
  // Points each parameter's gradient back at its view of grad_ (a caller may have replaced it)
  // and copies the replacement in.
  void GatherGrads();

  // Constant after construction.
  std::vector<ParamGroup> groups_;
  std::vector<torch::Tensor> all_params_;
  std::vector<torch::Tensor> grad_views_;  // parallel to all_params_
  double beta1_, beta2_, eps_;
  torch::Tensor lr_;        // [n] fp32: each element's group base_lr
  torch::Tensor lr_decay_;  // [n] fp32: base_lr * weight_decay; undefined when all are 0
  // Changed by Step, ZeroGrad and LoadState (the parameters live in param_).
  torch::Tensor param_, grad_, exp_avg_, exp_avg_sq_;         // [n] fp32 flat buffers
  std::vector<std::vector<torch::Tensor>> exp_avg_views_;     // per group, per param
  std::vector<std::vector<torch::Tensor>> exp_avg_sq_views_;  // per group, per param
  torch::Tensor steps_;          // 0-dim fp64 on the device: applied steps
  torch::Tensor lr_multiplier_;  // 0-dim fp64 on the device: the schedule's multiplier
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_OPTIMIZER_H_
