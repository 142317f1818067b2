// A shared-base group's step as one batch: the members' batches one after another along the rows
// (training_group.h). Internal to the engine.
#ifndef ATTUNE_SERVER_ENGINE_GROUP_BATCH_H_
#define ATTUNE_SERVER_ENGINE_GROUP_BATCH_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "server/engine/batches.h"

namespace attune::engine {

struct GroupBatch {
  torch::Tensor input_ids;        // [sum of rows, length]
  torch::Tensor attention_mask;   // undefined when no member's batch has padding or a mask
  PackedLayout packing;           // packed members: their layouts joined
  std::vector<int64_t> rows;      // each member's rows
  std::vector<int64_t> lengths;   // each member's own length (columns); length >= each
  std::vector<int64_t> examples;  // each member's rows of Model::Trunk (examples or slots)
};

// Joins `batches` (all packed with one row length, or all unpacked); unpacked rows shorter than
// the longest are padded with `pad_id` and masked out.
GroupBatch ConcatBatches(const std::vector<const Batch*>& batches, int32_t pad_id);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_GROUP_BATCH_H_
