// Which training steps run as CUDA graph replays, and running them. Internal to the engine.
//
// A CUDA graph removes the host's per-op dispatch, which bounds a small model's step (RoBERTa-base
// at batch 32 x 128 on an H200: 29 ms eager, 7 ms replayed). It only pays under three conditions,
// and StepGraphs checks each:
//   - the host is the bound: one eager step, timed with the device synchronised, takes at most
//     kMaxEagerStepMs; a longer step hides its dispatch behind the device (the 1.1B model's 171 ms
//     step took 178 ms replayed);
//   - the shape recurs: a capture costs far more than a step, so only a batch shape with at least
//     kMinReplays steps to go is captured (capturing each of the example job's dozen shapes made
//     it 2x slower);
//   - the capture works: a failed one turns graphs off for the run and training goes on eagerly.
// Each captured shape first runs kWarmupSteps steps eagerly on the side stream; at most kMaxGraphs
// shapes are captured, all in one memory pool. A replay gives the same numbers as the eager step.
#ifndef ATTUNE_SERVER_ENGINE_STEP_GRAPHS_H_
#define ATTUNE_SERVER_ENGINE_STEP_GRAPHS_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "server/engine/batches.h"
#include "server/engine/cuda_graph_step.h"

namespace attune::engine {

// One training step's results, 0-dim tensors on the device.
struct StepOutputs {
  torch::Tensor loss, grad_norm, finite;
};

// The shape a batch's graph is keyed by.
BatchShape ShapeOfBatch(const Batch& batch);
// A batch with its own copies of every tensor (a captured step's fixed inputs).
Batch CloneBatch(const Batch& batch);
// Copies `from`'s tensors into `to`'s (of the same shapes), as a replay's inputs.
void CopyBatchInto(const Batch& from, Batch* to);

class StepGraphs {
 public:
  static constexpr int kWarmupSteps = 3;
  static constexpr size_t kMaxGraphs = 8;
  static constexpr int64_t kMinReplays = 50;
  static constexpr double kMaxEagerStepMs = 50.0;

  // `body` queues one whole step (forward, backward, clipping, update) for a batch and returns
  // its outputs without reading anything back. `steps_per_shape`: how many steps of each batch
  // shape the run has left. `on_capture_failure` gets LibTorch's message after a failed capture
  // (the caller resets the gradients and warns). `device` must be a CUDA device.
  StepGraphs(torch::Device device, std::function<StepOutputs(const Batch&)> body,
             std::map<BatchShape, int64_t> steps_per_shape,
             std::function<void(const std::string&)> on_capture_failure);
  ~StepGraphs();
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  // Takes the step for `batch` when it is a replay, a capture or the timed step, and returns its
  // outputs; nullopt when the caller is to run `body` eagerly. The first call makes a side
  // stream current for the rest of the run (cuda_graph_step.h); an error if it cannot.
  absl::StatusOr<std::optional<StepOutputs>> Run(const Batch& batch);

  int64_t replays() const { return replays_; }

  // What Run does with a step of a shape that has no graph yet, from the shape's steps so far
  // (`seen`, this one included), its steps after this one, and whether any shape is captured.
  enum class Action {
    kEager,          // warming up, too few steps left to pay, or not the first shape timed
    kTimeEagerStep,  // the step before the first capture: is the host the bound?
    kCapture,
  };
  static Action Plan(int seen, int64_t steps_left, bool captured_any);

 private:
  // Runs `body_` with the device synchronised at both ends; turns graphs off when it took longer
  // than kMaxEagerStepMs.
  StepOutputs TimedEagerStep(const Batch& batch);

  struct Shape {
    int seen = 0;                        // steps of this shape so far
    Batch inputs;                        // the captured step's inputs
    StepOutputs outputs;                 // its outputs, rewritten by each replay
    std::unique_ptr<CapturedStep> step;  // null until captured
  };

  // Constant after construction.
  const torch::Device device_;
  const std::function<StepOutputs(const Batch&)> body_;
  const std::function<void(const std::string&)> on_capture_failure_;

  // The stream outlives the graphs (declared first).
  std::unique_ptr<SideStream> side_stream_;
  std::map<BatchShape, int64_t> steps_left_;  // counted down as steps are taken
  std::map<BatchShape, Shape> shapes_;
  const CapturedStep* first_graph_ = nullptr;  // owns the memory pool the others share
  bool off_ = false;                           // the device is the bound, or a capture failed
  int64_t replays_ = 0;
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_STEP_GRAPHS_H_
