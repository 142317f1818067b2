// Data-parallel training: one job trained by N processes (ranks), each on its own device, each
// taking its share of every step's examples, with gradients summed across ranks before the
// update. Internal to the engine (LibTorch).
//
// The collectives are LibTorch's c10d: ranks meet through a TCPStore that rank 0 hosts at
// ParallelOptions::rendezvous, then talk through ProcessGroupGloo on the CPU and
// ProcessGroupNCCL on CUDA (both ship in LibTorch; Debian's 1.13 has Gloo, NCCL comes with a
// CUDA LibTorch). What each rank computes is arranged so that N ranks with batch B give what
// one process with batch N x B gives (TrainingRun, step_batches.h):
//   - every rank builds the same global step (N x B examples, or N x the rows of a packed step)
//     and takes its contiguous share by rank;
//   - a rank's loss is its examples' mean times its share of the step's loss terms (examples, or
//     labelled tokens for causal LM), so the sum over ranks is the global mean, and so are the
//     summed gradients;
//   - gradients are summed with one all-reduce of the optimizer's flat gradient buffer, before
//     the norm and clipping; the parameters start equal (a broadcast from rank 0) and stay equal,
//     since every rank applies the same update;
//   - a stop asked of any rank stops every rank after the same step (AnyRank).
//
// Thread-compatible: one per TrainingRun, used by its training thread. Calls block until every
// rank has made the same call; a rank that dies makes the others fail within the timeout
// (attuned also kills the job's other ranks when one exits).
#ifndef ATTUNE_SERVER_ENGINE_DATA_PARALLEL_H_
#define ATTUNE_SERVER_ENGINE_DATA_PARALLEL_H_

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include "absl/status/statusor.h"
#include "server/engine/trainer.h"

namespace attune::engine {

class DataParallel {
 public:
  virtual ~DataParallel() = default;

  // Joins the rendezvous of `options` (rank 0 hosts the TCPStore at its port) and forms the
  // process group for `device`: Gloo on the CPU, NCCL on CUDA. INVALID_ARGUMENT for a bad
  // rank, world size or address; UNAVAILABLE when the other ranks do not arrive within the
  // timeout or the backend is not in this build of LibTorch.
  static absl::StatusOr<std::unique_ptr<DataParallel>> Connect(const ParallelOptions& options,
                                                               torch::Device device);

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

  // Sums `flat` (a contiguous tensor on the job's device) over the ranks, in place.
  virtual void AllReduceSum(torch::Tensor& flat) = 0;
  // Overwrites `flat` with rank 0's values, in place.
  virtual void Broadcast(torch::Tensor& flat) = 0;
  // True on every rank when `local` is true on any rank.
  bool AnyRank(bool local, torch::Device device);

 protected:
  DataParallel(int rank, int world_size) : rank_(rank), world_size_(world_size) {}

 private:
  // The process group over `store`, once the ranks have met. May throw.
  static absl::StatusOr<std::unique_ptr<DataParallel>> FormGroup(
      const ParallelOptions& options, const std::string& host, std::chrono::milliseconds timeout,
      c10::intrusive_ptr<c10d::Store> store, torch::Device device);

  const int rank_;
  const int world_size_;
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_DATA_PARALLEL_H_
