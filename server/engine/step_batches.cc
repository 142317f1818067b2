#include "server/engine/step_batches.h"

#include <algorithm>

namespace attune::engine {
namespace {

// What a loss is the mean over: an example, or for causal LM each predicted token (an example's
// first token is never predicted).
int64_t LossTerms(const Example& e, Task task) {
  if (task != Task::kCausalLm) return 1;
  int64_t terms = 0;
  for (size_t i = 1; i < e.loss_mask.size(); ++i) terms += e.loss_mask[i] != 0;
  return terms;
}

}  // namespace

StepBatches::StepBatches(const std::vector<Example>& examples, const TrainSpec& spec,
                         MaskMode mask_mode, int rank, int world_size)
    : examples_(examples),
      task_(spec.task),
      seed_(spec.seed),
      batch_size_(spec.batch_size * world_size),
      mask_mode_(mask_mode),
      packed_(spec.packing),
      rank_(rank),
      world_size_(world_size) {
  if (packed_) {
    rows_ = TrainingRows(examples, spec.max_seq_len, spec.seed);
    global_rows_ = TrainingRowsPerStep(spec.tokens_per_step * world_size, batch_size_,
                                       spec.max_seq_len, static_cast<int64_t>(rows_.size()),
                                       static_cast<int64_t>(examples.size()));
    steps_per_epoch_ = StepsPerEpoch(static_cast<int64_t>(rows_.size()), global_rows_);
    packed_shape_.rows = (global_rows_ + world_size - 1) / world_size;
    packed_shape_.length = spec.max_seq_len;
    packed_shape_.masked = true;
    packed_shape_.example_slots = MaxExamplesPerStep(rows_, packed_shape_.rows);
  } else {
    steps_per_epoch_ = (static_cast<int64_t>(examples.size()) + batch_size_ - 1) / batch_size_;
  }
  steps_per_epoch_ = std::max<int64_t>(1, steps_per_epoch_);
}

void StepBatches::LoadEpoch(int64_t epoch) {
  if (epoch == epoch_) return;
  epoch_ = epoch;
  if (packed_) {
    epoch_steps_ = EpochSteps(rows_, global_rows_, seed_, epoch);
  } else {
    epoch_batches_ = EpochBatches(examples_, batch_size_, seed_, epoch);
  }
}

std::pair<int64_t, int64_t> StepBatches::ShareOf(int64_t n) const {
  return {rank_ * n / world_size_, (rank_ + 1) * n / world_size_};
}

std::vector<int64_t> StepBatches::RankIndices(int64_t index) const {
  const std::vector<int64_t>& all = epoch_batches_[index];
  if (world_size_ == 1) return all;
  const auto [first, last] = ShareOf(static_cast<int64_t>(all.size()));
  return std::vector<int64_t>(all.begin() + first, all.begin() + last);
}

BatchShape StepBatches::ShapeAt(int64_t step) {
  if (packed_) return packed_shape_;
  LoadEpoch(step / steps_per_epoch_);
  return ShapeOf(examples_, RankIndices(step % steps_per_epoch_), mask_mode_);
}

Batch StepBatches::Make(int64_t step, int32_t pad_id, torch::Device device,
                        HostMemory host_memory) {
  LoadEpoch(step / steps_per_epoch_);
  const int64_t index = step % steps_per_epoch_;
  if (packed_) {
    const PackedStep& all = epoch_steps_[index];
    if (world_size_ == 1) {
      return MakePackedBatch(examples_, all, packed_shape_, task_, pad_id, device, host_memory);
    }
    const auto [first, last] = ShareOf(static_cast<int64_t>(all.size()));
    const PackedStep share(all.begin() + first, all.begin() + last);
    return MakePackedBatch(examples_, share, packed_shape_, task_, pad_id, device, host_memory);
  }
  const std::vector<int64_t> indices = RankIndices(index);
  if (indices.empty()) return Batch();  // a share of nothing: StepBody takes no loss from it
  return MakeBatch(examples_, indices, task_, pad_id, device, mask_mode_, host_memory);
}

StepBatches::Totals StepBatches::TotalsAt(int64_t step) {
  if (world_size_ == 1) return Totals();  // one rank: its batch says it all
  LoadEpoch(step / steps_per_epoch_);
  const int64_t index = step % steps_per_epoch_;
  Totals totals;
  Totals unused;
  int64_t all = 0;
  int64_t mine = 0;
  if (packed_) {
    const PackedStep& rows = epoch_steps_[index];
    const auto [first, last] = ShareOf(static_cast<int64_t>(rows.size()));
    for (int64_t r = 0; r < static_cast<int64_t>(rows.size()); ++r) {
      Count(rows[r], &all, &totals);
      if (r >= first && r < last) Count(rows[r], &mine, &unused);
    }
  } else {
    Count(epoch_batches_[index], &all, &totals);
    Count(RankIndices(index), &mine, &unused);
  }
  totals.loss_share = all > 0 ? static_cast<double>(mine) / all : 0.0;
  return totals;
}

void StepBatches::Count(const std::vector<int64_t>& indices, int64_t* terms, Totals* totals) const {
  for (int64_t i : indices) {
    *terms += LossTerms(examples_[i], task_);
    totals->tokens += static_cast<int64_t>(examples_[i].ids.size());
    ++totals->examples;
  }
}

}  // namespace attune::engine
