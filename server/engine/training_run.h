// One job's training, as RunTraining (trainer.h) runs it: Setup (data, model, optimizer) ->
// Resume (from the newest checkpoint, if any) -> Train (steps, evaluations, checkpoints) -> a
// final checkpoint when the job completes or is stopped. Internal to the engine (LibTorch).
//
// The step itself (forward, backward, clipping, update) is StepBody, queued on the device with
// nothing read back; StepReporter reads the steps' losses back and reports them, and
// CheckpointKeeper writes, ranks and prunes the checkpoints.
//
// Thread-compatible: one TrainingRun per job, used by that job's training thread only. It may
// throw (LibTorch); RunTraining turns exceptions into statuses.
#ifndef ATTUNE_SERVER_ENGINE_TRAINING_RUN_H_
#define ATTUNE_SERVER_ENGINE_TRAINING_RUN_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "server/engine/batches.h"
#include "server/engine/checkpoint_keeper.h"
#include "server/engine/data_parallel.h"
#include "server/engine/early_stopping.h"
#include "server/engine/frozen_cache.h"
#include "server/engine/job_setup.h"
#include "server/engine/model.h"
#include "server/engine/optimizer.h"
#include "server/engine/step_batches.h"
#include "server/engine/step_graphs.h"
#include "server/engine/step_reporter.h"
#include "server/engine/trainer.h"

namespace attune::engine {

class TrainingRun {
 public:
  // `observer` must outlive the run. With `frozen_cache` the model's frozen tensors are shared
  // with the other models loaded through it (frozen_cache.h).
  TrainingRun(const TrainSpec& spec, const RunOptions& options, TrainingObserver* observer,
              std::shared_ptr<FrozenTensorCache> frozen_cache = nullptr);
  ~TrainingRun();

  // Runs the job to completion or until the observer asks to stop. Call once.
  absl::StatusOr<TrainResult> Execute();

  // A shared-base group (group_run.h) drives its members a step at a time instead of Execute:
  //   Begin(); while ((batch = PrepareStep()) has a value) { the group's forward and backward;
  //   CompleteStep(*batch, FinishBackward(loss)); } then Result().
  // Execute runs the same loop with this run's own step (StepBody or its CUDA graph).
  absl::Status Begin();
  // The next step's batch, with the step's learning rates set; nullopt once the run has ended
  // (every step taken, early stopping, or a stop request, which writes the last checkpoint), and
  // Result() holds its result.
  absl::StatusOr<std::optional<Batch>> PrepareStep();
  // After the backward pass of this step's `loss` (detached): the gradient norm, clipping and
  // the update (skipped on the device when the loss or gradient is not finite).
  StepOutputs FinishBackward(torch::Tensor loss);
  // Reports the step, then runs its evaluation and checkpoint when due.
  absl::Status CompleteStep(const Batch& batch, StepOutputs out);
  absl::StatusOr<TrainResult> Result() const { return *result_; }
  // One step on its own: the CUDA graph's replay when there is one, else StepBody.
  absl::StatusOr<StepOutputs> RunStep(const Batch& batch);
  Model& model() { return *model_; }
  // Steps left to take, this one included once PrepareStep has given it.
  int64_t steps_left() const { return total_steps_ - step_; }
  // Zeroes the gradients (after a failed capture of a step that included this run's).
  void DiscardGradients() { optimizer_->ZeroGrad(); }
  int32_t pad_id() const { return data_.pad_id; }

 private:
  absl::Status Setup();
  // Restores the newest checkpoint, if any; returns the step to continue from.
  absl::StatusOr<int64_t> Resume();
  // SpeedOptions::cuda_graphs on CUDA: how many of the steps from `start_step` on have each
  // batch shape, for StepGraphs.
  void SetupStepGraphs(int64_t start_step);
  // Forward, backward, clipping and the update (with the multiplier already set), all queued on
  // the device.
  StepOutputs StepBody(const Batch& batch);
  // The training loss of `batch` (a 0-dim tensor on the device).
  torch::Tensor StepLoss(const Batch& batch);
  // Data-parallel: sums the gradients and `loss` over the ranks (data_parallel.h).
  void ReduceAcrossRanks(torch::Tensor& loss);
  // The observer's stop, agreed by every rank when data-parallel.
  bool StopRequested();
  // Rank 0 writes the job's files; the other ranks of a data-parallel job only train.
  bool WritesFiles() const { return parallel_ == nullptr || parallel_->rank() == 0; }
  bool MultiRank() const { return parallel_ != nullptr && parallel_->world_size() > 1; }
  // After `done` steps: the evaluation and the checkpoint, when due.
  absl::Status AfterStep(int64_t done);
  absl::Status EvaluateAt(int64_t done, bool last);
  absl::Status SaveCheckpoint(int64_t step);
  absl::StatusOr<TrainResult> Stop(int64_t step);
  TrainResult Finish(Outcome outcome, int64_t steps) const;
  SpecCheck SetupSummary() const;
  std::optional<PeftLoraConfig> AdapterConfig() const;
  MaskMode MaskModeOf() const;
  int64_t TrainableParameterCount() const;

  // Constant after construction.
  const TrainSpec spec_;
  const RunOptions options_;
  TrainingObserver* const observer_;
  const torch::Device device_;
  const std::shared_ptr<FrozenTensorCache> frozen_cache_;
  // Set up by Setup.
  JobData data_;
  std::unique_ptr<Model> model_;
  std::vector<TrainableParam> params_;
  std::unique_ptr<AdamW> optimizer_;
  int64_t steps_per_epoch_ = 1;
  int64_t total_steps_ = 0;
  std::unique_ptr<StepReporter> reporter_;
  std::unique_ptr<CheckpointKeeper> keeper_;
  std::unique_ptr<StepGraphs> step_graphs_;  // SpeedOptions::cuda_graphs on CUDA, else null
  std::unique_ptr<StepBatches> step_batches_;
  std::unique_ptr<DataParallel> parallel_;  // RunOptions::parallel.rendezvous set, else null
  // This rank's share of the current step's loss (StepBatches::Totals), set before StepBody.
  double loss_share_ = 1.0;
  // Progress.
  int64_t step_ = 0;                                   // the next step
  double multiplier_ = 1.0;                            // the next step's learning-rate multiplier
  StepBatches::Totals totals_;                         // the next step's totals over the ranks
  std::optional<absl::StatusOr<TrainResult>> result_;  // once the run has ended
  std::optional<EvalMetrics> last_eval_;
  EarlyStopping early_stopping_;  // TrainSpec::early_stopping_patience
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_TRAINING_RUN_H_
