// CUDA graphs for the training step: capture the whole step once, then replay it. Internal to
// the engine.
//
// A small model's step is bound by the host, which dispatches every LibTorch op of it: on an H200
// RoBERTa-base at batch 32 x 128 took 29 ms/step eagerly and 7 ms replayed. A CUDA graph records
// the kernels of one step (forward, backward, clipping, the optimizer update) and replays them
// with one launch. The step must then read its inputs from fixed tensors and must not
// synchronise with the host, as the trainer's step does not (metrics stay on the device; the
// learning-rate multiplier is a device scalar, AdamW::SetLrMultiplier). When to use a graph is
// StepGraphs' decision (step_graphs.h).
//
// Capture needs a stream other than the default one: `SideStream` makes one current for the rest
// of a run, so that every later op (batch copies, replays, evaluation) stays ordered on it.
// Available only where the engine is built against a CUDA LibTorch >= 2 (the GPU machine);
// Debian's CPU LibTorch builds the stubs, and the trainer never calls them on the CPU.
#ifndef ATTUNE_SERVER_ENGINE_CUDA_GRAPH_STEP_H_
#define ATTUNE_SERVER_ENGINE_CUDA_GRAPH_STEP_H_

#include <c10/core/Device.h>

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace attune::engine {

// True when this build can capture CUDA graphs.
bool CudaGraphsAvailable();

// LibTorch's default CUDA generator is one per device for the whole process, and a capture puts
// it in capture mode: another thread's eager random op meanwhile (a job's dropout) fails with
// "Offset increment outside graph capture encountered unexpectedly", and another graph's replay
// would reset the capture's RNG offsets. Seen on the H200 with 8 jobs on one GPU (2026-12-02):
// every job failed at step 1. So a capture excludes every other training step of the process:
// CapturedStep::Capture holds this lock exclusively, and each training step (eager or replayed)
// holds it shared (absl::Mutex: a waiting writer blocks new readers, so a capture is not starved).
absl::Mutex& CudaRngMutex();

// While alive, a fresh stream of `device` is the current CUDA stream of the calling thread; the
// destructor waits for it and restores the previous one. Not copyable; one per training thread.
class SideStream {
 public:
  // FAILED_PRECONDITION when CUDA graphs are not available in this build.
  static absl::StatusOr<std::unique_ptr<SideStream>> Create(c10::Device device);
  ~SideStream();
  SideStream(const SideStream&) = delete;
  SideStream& operator=(const SideStream&) = delete;

 private:
  struct State;
  explicit SideStream(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// A captured step. Capture (holding CudaRngMutex exclusively) records `body`'s kernels on the
// current (side) stream without running them, with autocast's weight cache off; every Replay() runs
// them. Tensors that `body` creates live in the graph's private memory and are overwritten by each
// replay.
class CapturedStep {
 public:
  // INTERNAL with LibTorch's message when the capture fails (an op that synchronises, say);
  // FAILED_PRECONDITION when CUDA graphs are not available.
  // With `share_pool_with`, the new graph takes its memory from that graph's pool, so that graphs
  // of several batch shapes (replayed one at a time) do not each hold a step's activations.
  static absl::StatusOr<std::unique_ptr<CapturedStep>> Capture(
      const std::function<void()>& body, const CapturedStep* share_pool_with = nullptr);
  ~CapturedStep();
  void Replay();

 private:
  struct State;
  explicit CapturedStep(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_CUDA_GRAPH_STEP_H_
