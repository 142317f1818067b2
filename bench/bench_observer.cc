#include "bench/bench_observer.h"

#include <torch/cuda.h>

#include <algorithm>
#include <iostream>
#include <utility>

namespace attune::bench {

void SyncDevice(const std::string& device) {
  if (device.rfind("cuda", 0) == 0) torch::cuda::synchronize();
}

BenchObserver::BenchObserver(std::string device, int64_t timing_warmup, KinetoTrace* trace,
                             int64_t trace_steps)
    : device_(std::move(device)),
      timing_warmup_(timing_warmup),
      trace_(trace),
      trace_steps_(trace_steps) {}

void BenchObserver::OnStart(const engine::SpecCheck& setup, int64_t) {
  setup_ = setup;
  started_ = Clock::now();
  std::cerr << "attune-bench: set up; training" << std::endl;
}

void BenchObserver::OnStep(const engine::StepMetrics& m) {
  if (m.step == 1) std::cerr << "attune-bench: step 1 done" << std::endl;
  losses_.push_back(m.train_loss);
  grad_norms_.push_back(m.grad_norm);
  if (m.skipped) ++skipped_;
  total_steps_ = m.total_steps;
  if (m.step == std::min(timing_warmup_, m.total_steps - 1)) {
    SyncDevice(device_);
    window_start_ = Clock::now();
    window_first_step_ = m.step;
    trace_->Start();
  } else if (m.step > window_first_step_ && window_first_step_ >= 0) {
    window_tokens_ += m.tokens;
    window_samples_ += m.samples;
  }
  if (trace_->recording() && m.step == std::min(window_first_step_ + trace_steps_, m.total_steps)) {
    SyncDevice(device_);
    if (trace_->StopAndSave()) profiled_steps_ = m.step - window_first_step_;
  }
  if (m.step == m.total_steps) {
    SyncDevice(device_);
    window_end_ = Clock::now();
    window_steps_ = m.step - window_first_step_;
  }
}

}  // namespace attune::bench
