// Which examples each training step takes, and its batch: packed (packing.h; the spec's
// default) or one example per row (data.h's EpochBatches, padded to the longest). Internal to
// the engine (LibTorch).
//
// Everything is a function of the spec, the examples and the step number: a resumed run, or a
// second run with the same seed, sees the same batches. Packed, every step has the same shape
// (BatchShape with example_slots), so CUDA graphs replay one graph for the whole run.
//
// Data-parallel (data_parallel.h): rank `rank` of `world_size` sees the global step of a run
// with world_size x batch_size (and x tokens_per_step), and takes its contiguous share of it:
// rows [rank x n / world, (rank + 1) x n / world) of the step's n examples (unpacked) or rows
// (packed), so that the ranks together see exactly what one process would.
//
// Thread-compatible: one per TrainingRun.
#ifndef ATTUNE_SERVER_ENGINE_STEP_BATCHES_H_
#define ATTUNE_SERVER_ENGINE_STEP_BATCHES_H_

#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "common/job_spec.h"
#include "server/engine/batches.h"
#include "server/engine/data.h"
#include "server/engine/packing.h"

namespace attune::engine {

class StepBatches {
 public:
  // `examples` must outlive this object. `mask_mode` applies to unpacked batches only (a packed
  // batch always carries its layout).
  StepBatches(const std::vector<Example>& examples, const TrainSpec& spec, MaskMode mask_mode,
              int rank = 0, int world_size = 1);

  int64_t steps_per_epoch() const { return steps_per_epoch_; }

  // The shape of step `step`'s batch (0-based, counting from the run's start).
  BatchShape ShapeAt(int64_t step);

  // Step `step`'s batch on `device`.
  Batch Make(int64_t step, int32_t pad_id, torch::Device device, HostMemory host_memory);

  // Step `step` over all ranks: this rank's share of its loss terms (examples; predicted tokens
  // for causal LM): its terms over all ranks' terms, 1 with one rank, 0 for a share without
  // terms; and the step's real tokens and examples on all ranks together (0 with one rank,
  // whose batch carries them).
  struct Totals {
    double loss_share = 1.0;
    int64_t tokens = 0;
    int64_t examples = 0;
  };
  Totals TotalsAt(int64_t step);

 private:
  // Loads epoch `epoch`'s order into epoch_batches_ / epoch_steps_ unless it is there.
  void LoadEpoch(int64_t epoch);
  // This rank's part [first, last) of a global step of `n` examples or rows.
  std::pair<int64_t, int64_t> ShareOf(int64_t n) const;
  // Unpacked: this rank's examples of the loaded epoch's batch `index`.
  std::vector<int64_t> RankIndices(int64_t index) const;
  // Adds the loss terms, tokens and count of examples `indices` to *terms and *totals.
  void Count(const std::vector<int64_t>& indices, int64_t* terms, Totals* totals) const;

  const std::vector<Example>& examples_;
  const Task task_;
  const uint64_t seed_;
  const int batch_size_;
  const MaskMode mask_mode_;
  const bool packed_;
  const int rank_;
  const int world_size_;
  int64_t global_rows_ = 0;      // packed: rows per step over all ranks
  BatchShape packed_shape_;      // packed: every step's shape (this rank's rows)
  std::vector<PackedRow> rows_;  // packed: the run's rows
  int64_t steps_per_epoch_ = 1;
  int64_t epoch_ = -1;                               // which epoch the vectors below hold
  std::vector<std::vector<int64_t>> epoch_batches_;  // unpacked
  std::vector<PackedStep> epoch_steps_;              // packed
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_STEP_BATCHES_H_
