// attune-bench's TrainingObserver: every step's loss, and the wall clock at the edges of the
// timing window (the steps after --timing-warmup, with the device synchronised at both ends),
// and the optional Kineto trace of the window's first steps. Part of the benchmark, not of the
// engine's interface: it may include LibTorch, only to synchronise the device.
#ifndef ATTUNE_BENCH_BENCH_OBSERVER_H_
#define ATTUNE_BENCH_BENCH_OBSERVER_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/kineto_trace.h"
#include "server/engine/trainer.h"

namespace attune::bench {

using Clock = std::chrono::steady_clock;

// Waits for the device's queued work; a no-op on "cpu".
void SyncDevice(const std::string& device);

class BenchObserver : public engine::TrainingObserver {
 public:
  // `trace` (outliving this) records `trace_steps` steps from the start of the timing window.
  BenchObserver(std::string device, int64_t timing_warmup, KinetoTrace* trace, int64_t trace_steps);

  void OnStart(const engine::SpecCheck& setup, int64_t) override;
  void OnStep(const engine::StepMetrics& m) override;
  void OnEval(const engine::EvalMetrics&) override {}
  void OnCheckpoint(const engine::CheckpointInfo&) override {}
  void OnWarning(const std::string& message) override { warnings_.push_back(message); }
  bool StopRequested() override { return false; }

  // Constant once RunTraining has returned.
  engine::SpecCheck setup_;
  Clock::time_point started_, window_start_, window_end_;
  int64_t window_first_step_ = -1;
  int64_t window_steps_ = 0;
  int64_t window_tokens_ = 0;
  int64_t window_samples_ = 0;
  int64_t total_steps_ = 0;
  int64_t skipped_ = 0;
  int64_t profiled_steps_ = 0;  // steps in the saved trace; 0 without one
  std::vector<double> losses_;
  std::vector<double> grad_norms_;
  std::vector<std::string> warnings_;

 private:
  const std::string device_;
  const int64_t timing_warmup_;
  KinetoTrace* const trace_;
  const int64_t trace_steps_;
};

}  // namespace attune::bench

#endif  // ATTUNE_BENCH_BENCH_OBSERVER_H_
