// Reporting a job's steps: the losses and gradient norms that the step loop leaves on the device
// are read back in one copy now and then, and each step goes to the observer as StepMetrics, in
// order. Internal to the engine (LibTorch).
//
// When to read back is SpeedOptions::metrics_every (trainer.h): every step on the CPU; on CUDA
// every 0.5 s, so that a step never waits for the device. A step whose loss or gradient was not
// finite is reported as skipped with a warning; kMaxNonFiniteInARow of them in a row fail the job.
// On CUDA each read also takes the device's memory figures (device_memory.h), shared by the
// steps reported together; on the CPU StepMetrics::device_memory stays unset.
//
// Thread-compatible: owned and called by one job's training thread.
#ifndef ATTUNE_SERVER_ENGINE_STEP_REPORTER_H_
#define ATTUNE_SERVER_ENGINE_STEP_REPORTER_H_

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/engine/trainer.h"

namespace attune::engine {

// A step queued on the device, not yet reported.
struct PendingStep {
  int64_t step = 0;                       // 0-based
  torch::Tensor loss, grad_norm, finite;  // 0-dim, on the device
  std::map<std::string, double> learning_rates;
  int64_t tokens = 0;
  int64_t samples = 0;
};

class StepReporter {
 public:
  static constexpr int kMaxNonFiniteInARow = 5;

  // `observer` must outlive the reporter.
  StepReporter(torch::Device device, int metrics_every, int64_t total_steps,
               int64_t steps_per_epoch, TrainingObserver* observer);

  // Starts the clock that the first steps' rates are measured from.
  void Start() { last_report_ = std::chrono::steady_clock::now(); }

  // Queues `step`, and reports every queued step when a read is due. Errors as Flush.
  absl::Status Add(PendingStep step);

  // Reports every queued step (the only host sync of training). INTERNAL after
  // kMaxNonFiniteInARow skipped steps in a row, naming the step and what to try.
  absl::Status Flush();

  // The last finite training loss reported (or restored from a checkpoint).
  double last_train_loss() const { return last_train_loss_; }
  void set_last_train_loss(double loss) { last_train_loss_ = loss; }

 private:
  bool Due() const;
  // Reports one step with its values read back; `seconds` is its share of the time elapsed.
  absl::Status Report(const PendingStep& pending, double loss, double grad_norm, bool finite,
                      double seconds, const std::optional<DeviceMemory>& memory);

  // Constant after construction.
  const torch::Device device_;
  const int metrics_every_;
  const int64_t total_steps_;
  const int64_t steps_per_epoch_;
  TrainingObserver* const observer_;
  // Progress.
  std::vector<PendingStep> pending_;
  std::chrono::steady_clock::time_point last_report_;
  int non_finite_in_a_row_ = 0;
  double last_train_loss_ = 0;
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_STEP_REPORTER_H_
