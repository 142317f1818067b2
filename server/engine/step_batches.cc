#include "server/engine/step_batches.h"

namespace attune::engine {

StepBatches::StepBatches(const std::vector<Example>& examples, const TrainSpec& spec,
                         MaskMode mask_mode)
    : examples_(examples),
      task_(spec.task),
      seed_(spec.seed),
      batch_size_(spec.batch_size),
      mask_mode_(mask_mode),
      packed_(spec.packing) {
  if (packed_) {
    rows_ = TrainingRows(examples, spec.max_seq_len, spec.seed);
    const int64_t rows_per_step = TrainingRowsPerStep(
        spec.tokens_per_step, spec.batch_size, spec.max_seq_len, static_cast<int64_t>(rows_.size()),
        static_cast<int64_t>(examples.size()));
    steps_per_epoch_ = StepsPerEpoch(static_cast<int64_t>(rows_.size()), rows_per_step);
    packed_shape_.rows = rows_per_step;
    packed_shape_.length = spec.max_seq_len;
    packed_shape_.masked = true;
    packed_shape_.example_slots = MaxExamplesPerStep(rows_, rows_per_step);
  } else {
    steps_per_epoch_ = (static_cast<int64_t>(examples.size()) + batch_size_ - 1) / batch_size_;
  }
  steps_per_epoch_ = std::max<int64_t>(1, steps_per_epoch_);
}

void StepBatches::LoadEpoch(int64_t epoch) {
  if (epoch == epoch_) return;
  epoch_ = epoch;
  if (packed_) {
    epoch_steps_ = EpochSteps(rows_, packed_shape_.rows, seed_, epoch);
  } else {
    epoch_batches_ = EpochBatches(examples_, batch_size_, seed_, epoch);
  }
}

BatchShape StepBatches::ShapeAt(int64_t step) {
  if (packed_) return packed_shape_;
  LoadEpoch(step / steps_per_epoch_);
  return ShapeOf(examples_, epoch_batches_[step % steps_per_epoch_], mask_mode_);
}

Batch StepBatches::Make(int64_t step, int32_t pad_id, torch::Device device,
                        HostMemory host_memory) {
  LoadEpoch(step / steps_per_epoch_);
  const int64_t index = step % steps_per_epoch_;
  if (packed_) {
    return MakePackedBatch(examples_, epoch_steps_[index], packed_shape_, task_, pad_id, device,
                           host_memory);
  }
  return MakeBatch(examples_, epoch_batches_[index], task_, pad_id, device, mask_mode_,
                   host_memory);
}

}  // namespace attune::engine
