// CUDA graphs for a shared-base group's fused step (group_run.cc). Internal to the engine.
//
// A group of small models is bound by the host as one small job is (step_graphs.h): eight
// RoBERTa-base members on an H200 took 128 ms a fused step eagerly (at 8733b0c), where each
// alone replays its step in 4.5 ms. GroupGraph captures the whole fused step (the members' forward
// and backward through the shared base and each member's clipping and update) once the same members
// have stepped together kWarmupSteps times with the same batch shapes, then replays it while they
// do. It follows StepGraphs' rules: the step before the capture is timed and graphs stay off
// when it took longer than StepGraphs::kMaxEagerStepMs per member (the device is the bound); a
// capture needs StepGraphs::kMinReplays steps to go in every member; a failed capture turns
// graphs off for the group. Members joining or leaving drop the graph (Reset); a step of other
// shapes (an epoch's last, shorter one) runs eagerly beside it.
#ifndef ATTUNE_SERVER_ENGINE_GROUP_GRAPH_H_
#define ATTUNE_SERVER_ENGINE_GROUP_GRAPH_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/engine/batches.h"
#include "server/engine/cuda_graph_step.h"
#include "server/engine/step_graphs.h"

namespace attune::engine {

class GroupGraph {
 public:
  // The fused step over the members' batches (in member order): queued on the device, nothing
  // read back, each member's outputs.
  using Body = std::function<std::vector<StepOutputs>(const std::vector<const Batch*>&)>;

  // `on_capture_failure` gets LibTorch's message (the caller discards the gradients and warns).
  GroupGraph(torch::Device device, std::function<void(const std::string&)> on_capture_failure);
  ~GroupGraph();
  GroupGraph(const GroupGraph&) = delete;
  GroupGraph& operator=(const GroupGraph&) = delete;

  // Forgets the graph and the warm-up: the members changed.
  void Reset();

  // Takes the step when it is a replay, a capture or the timed step, returning each member's
  // outputs; nullopt when the caller is to run `body` eagerly (holding CudaRngMutex shared).
  // `steps_left`: the fewest steps any member has after this one.
  absl::StatusOr<std::optional<std::vector<StepOutputs>>> Run(
      const std::vector<const Batch*>& batches, int64_t steps_left, const Body& body);

  int64_t replays() const { return replays_; }

 private:
  std::vector<StepOutputs> TimedEagerStep(const std::vector<const Batch*>& batches,
                                          const Body& body);

  const torch::Device device_;
  const std::function<void(const std::string&)> on_capture_failure_;
  std::unique_ptr<SideStream> side_stream_;  // outlives the graph (declared first)
  std::vector<BatchShape> shapes_;           // the members' shapes warmed up or captured
  int seen_ = 0;                             // steps of those shapes since the last Reset
  std::vector<Batch> inputs_;                // the captured step's inputs
  std::vector<StepOutputs> outputs_;         // its outputs, rewritten by each replay
  std::unique_ptr<CapturedStep> step_;       // null until captured
  bool off_ = false;                         // the device is the bound, or a capture failed
  int64_t replays_ = 0;
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_GROUP_GRAPH_H_
