#include "server/engine/group_batch.h"

#include <algorithm>

namespace attune::engine {
namespace {

// Packed layouts joined: each member's flat token indices move by the tokens before it.
PackedLayout JoinLayouts(const std::vector<const Batch*>& batches, int64_t length) {
  std::vector<torch::Tensor> positions, segments, cu, first, last;
  PackedLayout joined;
  int64_t offset = 0;
  for (size_t j = 0; j < batches.size(); ++j) {
    const PackedLayout& p = batches[j]->packing;
    TORCH_CHECK(p.defined() && batches[j]->input_ids.size(1) == length,
                "a group's packed batches need one row length");
    positions.push_back(p.positions);
    segments.push_back(p.segments);
    // Each member's starts but its leading 0 (the previous member's end is that start).
    cu.push_back(j == 0 ? p.cu_seqlens : p.cu_seqlens.slice(0, 1) + static_cast<int>(offset));
    first.push_back(p.first + offset);
    last.push_back(p.last + offset);
    joined.max_seqlen = std::max(joined.max_seqlen, p.max_seqlen);
    offset += batches[j]->input_ids.size(0) * length;
  }
  joined.positions = torch::cat(positions);
  joined.segments = torch::cat(segments);
  joined.cu_seqlens = torch::cat(cu);
  joined.first = torch::cat(first);
  joined.last = torch::cat(last);
  return joined;
}

// Unpacked: `t` [rows, length_j] padded on the right with `value` to `length` columns.
torch::Tensor PadColumns(const torch::Tensor& t, int64_t length, int64_t value) {
  const int64_t missing = length - t.size(1);
  return missing == 0 ? t : torch::constant_pad_nd(t, {0, missing}, value);
}

}  // namespace

GroupBatch ConcatBatches(const std::vector<const Batch*>& batches, int32_t pad_id) {
  GroupBatch g;
  const bool packed = batches[0]->packing.defined();
  int64_t length = 0;
  bool masked = false;
  for (const Batch* b : batches) {
    TORCH_CHECK(b->packing.defined() == packed, "a group's batches are all packed or none");
    g.rows.push_back(b->input_ids.size(0));
    g.lengths.push_back(b->input_ids.size(1));
    g.examples.push_back(packed ? b->packing.first.size(0) : b->input_ids.size(0));
    masked = masked || b->attention_mask.defined() || b->input_ids.size(1) != g.lengths[0];
    length = std::max(length, b->input_ids.size(1));
  }
  std::vector<torch::Tensor> ids, masks;
  for (const Batch* b : batches) {
    ids.push_back(PadColumns(b->input_ids, length, pad_id));
    if (!masked) continue;
    const torch::Tensor mask =
        b->attention_mask.defined() ? b->attention_mask : torch::ones_like(b->input_ids);
    masks.push_back(PadColumns(mask, length, 0));
  }
  g.input_ids = torch::cat(ids);
  if (masked) g.attention_mask = torch::cat(masks);
  if (packed) g.packing = JoinLayouts(batches, length);
  return g;
}

}  // namespace attune::engine
