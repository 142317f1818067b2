#include "server/engine/step_graphs.h"

#include <torch/cuda.h>

#include <chrono>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"

namespace attune::engine {

namespace {

// Every tensor of a batch, for copying a new step's inputs into the captured ones.
std::vector<torch::Tensor*> TensorsOf(Batch& b) {
  return {&b.input_ids,          &b.attention_mask,    &b.labels,
          &b.example_weights,    &b.packing.positions, &b.packing.segments,
          &b.packing.cu_seqlens, &b.packing.first,     &b.packing.last};
}

}  // namespace

BatchShape ShapeOfBatch(const Batch& batch) {
  const int64_t slots = batch.packing.defined() ? batch.example_weights.size(0) : 0;
  return {batch.input_ids.size(0), batch.input_ids.size(1), batch.attention_mask.defined(), slots};
}

Batch CloneBatch(const Batch& batch) {
  Batch clone = batch;
  for (torch::Tensor* t : TensorsOf(clone)) {
    if (t->defined()) *t = t->clone();
  }
  return clone;
}

void CopyBatchInto(const Batch& from, Batch* to) {
  torch::NoGradGuard no_grad;
  Batch source = from;
  const std::vector<torch::Tensor*> dst = TensorsOf(*to);
  const std::vector<torch::Tensor*> src = TensorsOf(source);
  for (size_t i = 0; i < dst.size(); ++i) {
    if (dst[i]->defined()) dst[i]->copy_(*src[i]);
  }
}

StepGraphs::StepGraphs(torch::Device device, std::function<StepOutputs(const Batch&)> body,
                       std::map<BatchShape, int64_t> steps_per_shape,
                       std::function<void(const std::string&)> on_capture_failure)
    : device_(device),
      body_(std::move(body)),
      on_capture_failure_(std::move(on_capture_failure)),
      steps_left_(std::move(steps_per_shape)) {}

StepGraphs::~StepGraphs() = default;

StepGraphs::Action StepGraphs::Plan(int seen, int64_t steps_left, bool captured_any) {
  if (seen < kWarmupSteps || steps_left + 1 < kMinReplays) return Action::kEager;
  if (seen == kWarmupSteps) return captured_any ? Action::kEager : Action::kTimeEagerStep;
  return Action::kCapture;
}

StepOutputs StepGraphs::TimedEagerStep(const Batch& batch) {
  absl::ReaderMutexLock shared(&CudaRngMutex());
  torch::cuda::synchronize(device_.index());
  const auto start = std::chrono::steady_clock::now();
  StepOutputs out = body_(batch);
  torch::cuda::synchronize(device_.index());
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  if (took.count() > kMaxEagerStepMs) off_ = true;
  return out;
}

absl::StatusOr<std::optional<StepOutputs>> StepGraphs::Run(const Batch& batch) {
  if (off_) return std::nullopt;
  if (side_stream_ == nullptr) {
    ASSIGN_OR_RETURN(side_stream_, SideStream::Create(device_));
  }
  const BatchShape key = ShapeOfBatch(batch);
  const int64_t left = --steps_left_[key];  // steps of this shape after this one
  auto it = shapes_.find(key);
  if (it == shapes_.end()) {
    if (shapes_.size() >= kMaxGraphs) return std::nullopt;
    it = shapes_.emplace(key, Shape{}).first;
  }
  Shape& s = it->second;
  if (s.step == nullptr) {
    switch (Plan(++s.seen, left, first_graph_ != nullptr)) {
      case Action::kEager:
        return std::nullopt;
      case Action::kTimeEagerStep:
        return TimedEagerStep(batch);
      case Action::kCapture:
        break;
    }
    s.inputs = CloneBatch(batch);
    absl::StatusOr<std::unique_ptr<CapturedStep>> captured =
        CapturedStep::Capture([this, &s] { s.outputs = body_(s.inputs); }, first_graph_);
    if (!captured.ok()) {
      off_ = true;
      on_capture_failure_(std::string(captured.status().message()));
      return std::nullopt;
    }
    s.step = *std::move(captured);
    if (first_graph_ == nullptr) first_graph_ = s.step.get();
  } else {
    CopyBatchInto(batch, &s.inputs);
  }
  {
    absl::ReaderMutexLock shared(&CudaRngMutex());
    s.step->Replay();
  }
  ++replays_;
  return StepOutputs{s.outputs.loss.clone(), s.outputs.grad_norm.clone(), s.outputs.finite.clone()};
}

}  // namespace attune::engine
