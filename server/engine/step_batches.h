// Which examples each training step takes, and its batch: packed (packing.h; the spec's
// default) or one example per row (data.h's EpochBatches, padded to the longest). Internal to
// the engine (LibTorch).
//
// Everything is a function of the spec, the examples and the step number: a resumed run, or a
// second run with the same seed, sees the same batches. Packed, every step has the same shape
// (BatchShape with example_slots), so CUDA graphs replay one graph for the whole run.
//
// Thread-compatible: one per TrainingRun.
#ifndef ATTUNE_SERVER_ENGINE_STEP_BATCHES_H_
#define ATTUNE_SERVER_ENGINE_STEP_BATCHES_H_

#include <torch/torch.h>

#include <cstdint>
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
  StepBatches(const std::vector<Example>& examples, const TrainSpec& spec, MaskMode mask_mode);

  int64_t steps_per_epoch() const { return steps_per_epoch_; }

  // The shape of step `step`'s batch (0-based, counting from the run's start).
  BatchShape ShapeAt(int64_t step);

  // Step `step`'s batch on `device`.
  Batch Make(int64_t step, int32_t pad_id, torch::Device device, HostMemory host_memory);

 private:
  // Loads epoch `epoch`'s order into epoch_batches_ / epoch_steps_ unless it is there.
  void LoadEpoch(int64_t epoch);

  const std::vector<Example>& examples_;
  const Task task_;
  const uint64_t seed_;
  const int batch_size_;
  const MaskMode mask_mode_;
  const bool packed_;
  BatchShape packed_shape_;      // packed: every step's shape
  std::vector<PackedRow> rows_;  // packed: the run's rows
  int64_t steps_per_epoch_ = 1;
  int64_t epoch_ = -1;                               // which epoch the vectors below hold
  std::vector<std::vector<int64_t>> epoch_batches_;  // unpacked
  std::vector<PackedStep> epoch_steps_;              // packed
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_STEP_BATCHES_H_
