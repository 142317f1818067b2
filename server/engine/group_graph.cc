#include "server/engine/group_graph.h"

#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"

namespace attune::engine {

GroupGraph::GroupGraph(torch::Device device,
                       std::function<void(const std::string&)> on_capture_failure)
    : device_(device), on_capture_failure_(std::move(on_capture_failure)) {}

GroupGraph::~GroupGraph() = default;

void GroupGraph::Reset() {
  step_.reset();
  inputs_.clear();
  outputs_.clear();
  shapes_.clear();
  seen_ = 0;
}

std::vector<StepOutputs> GroupGraph::TimedEagerStep(const std::vector<const Batch*>& batches,
                                                    const Body& body) {
  absl::ReaderMutexLock shared(&CudaRngMutex());
  torch::cuda::synchronize(device_.index());
  const auto start = std::chrono::steady_clock::now();
  std::vector<StepOutputs> outs = body(batches);
  torch::cuda::synchronize(device_.index());
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  if (took.count() > StepGraphs::kMaxEagerStepMs * static_cast<double>(batches.size())) {
    off_ = true;
  }
  return outs;
}

absl::StatusOr<std::optional<std::vector<StepOutputs>>> GroupGraph::Run(
    const std::vector<const Batch*>& batches, int64_t steps_left, const Body& body) {
  if (off_ || !device_.is_cuda() || !CudaGraphsAvailable()) return std::nullopt;
  std::vector<BatchShape> shapes;
  for (const Batch* b : batches) shapes.push_back(ShapeOfBatch(*b));
  if (shapes != shapes_) {
    if (step_ != nullptr) return std::nullopt;  // another shape beside the captured one
    shapes_ = shapes;
    seen_ = 0;
  }
  if (step_ == nullptr) {
    switch (StepGraphs::Plan(++seen_, steps_left, /*captured_any=*/false)) {
      case StepGraphs::Action::kEager:
        return std::nullopt;
      case StepGraphs::Action::kTimeEagerStep:
        return TimedEagerStep(batches, body);
      case StepGraphs::Action::kCapture:
        break;
    }
    if (side_stream_ == nullptr) {
      ASSIGN_OR_RETURN(side_stream_, SideStream::Create(device_));
    }
    inputs_.clear();
    for (const Batch* b : batches) inputs_.push_back(CloneBatch(*b));
    std::vector<const Batch*> fixed;
    for (const Batch& b : inputs_) fixed.push_back(&b);
    absl::StatusOr<std::unique_ptr<CapturedStep>> captured =
        CapturedStep::Capture([&] { outputs_ = body(fixed); });
    if (!captured.ok()) {
      off_ = true;
      Reset();
      on_capture_failure_(std::string(captured.status().message()));
      return std::nullopt;
    }
    step_ = *std::move(captured);
  } else {
    for (size_t j = 0; j < batches.size(); ++j) CopyBatchInto(*batches[j], &inputs_[j]);
  }
  {
    absl::ReaderMutexLock shared(&CudaRngMutex());
    step_->Replay();
  }
  ++replays_;
  std::vector<StepOutputs> outs;
  for (const StepOutputs& o : outputs_) {
    outs.push_back(StepOutputs{o.loss.clone(), o.grad_norm.clone(), o.finite.clone()});
  }
  return outs;
}

}  // namespace attune::engine
