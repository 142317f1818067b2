#include "server/engine/batches.h"

#include <algorithm>

namespace attune::engine {

BatchShape ShapeOf(const std::vector<Example>& examples, const std::vector<int64_t>& indices,
                   MaskMode mask_mode) {
  BatchShape shape;
  shape.rows = static_cast<int64_t>(indices.size());
  int64_t tokens = 0;
  for (int64_t i : indices) {
    const int64_t n = static_cast<int64_t>(examples[i].ids.size());
    shape.length = std::max(shape.length, n);
    tokens += n;
  }
  shape.masked = mask_mode == MaskMode::kAlways || tokens < shape.rows * shape.length;
  return shape;
}

Batch MakeBatch(const std::vector<Example>& examples, const std::vector<int64_t>& indices,
                Task task, int32_t pad_id, torch::Device device, MaskMode mask_mode,
                HostMemory host_memory) {
  const BatchShape shape = ShapeOf(examples, indices, mask_mode);
  const int64_t b = shape.rows;
  const int64_t t = shape.length;
  const auto host = torch::TensorOptions().pinned_memory(device.is_cuda() &&
                                                         host_memory == HostMemory::kPinnedOnCuda);
  auto ids = torch::full({b, t}, pad_id, host.dtype(torch::kInt64));
  auto mask = torch::zeros({b, t}, host.dtype(torch::kInt64));
  torch::Tensor labels =
      task == Task::kCausalLm     ? torch::full({b, t}, -100, host.dtype(torch::kInt64))
      : task == Task::kRegression ? torch::zeros({b}, host.dtype(torch::kFloat32))
                                  : torch::zeros({b}, host.dtype(torch::kInt64));
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  Batch batch;
  for (int64_t row = 0; row < b; ++row) {
    const Example& e = examples[indices[row]];
    for (size_t col = 0; col < e.ids.size(); ++col) {
      ids_a[row][col] = e.ids[col];
      mask_a[row][col] = 1;
    }
    batch.tokens += static_cast<int64_t>(e.ids.size());
    if (task == Task::kCausalLm) {
      auto labels_a = labels.accessor<int64_t, 2>();
      for (size_t col = 0; col < e.ids.size(); ++col) {
        if (e.loss_mask[col]) labels_a[row][col] = e.ids[col];
      }
    } else if (task == Task::kRegression) {
      labels.accessor<float, 1>()[row] = e.target;
    } else {
      labels.accessor<int64_t, 1>()[row] = e.label;
    }
  }
  batch.input_ids = ids.to(device, /*non_blocking=*/true);
  if (shape.masked) {
    batch.attention_mask = mask.to(device, /*non_blocking=*/true);
  }
  batch.labels = labels.to(device, /*non_blocking=*/true);
  batch.size = b;
  return batch;
}

namespace {

// The host tensors of a packed batch, filled row by row (MakePackedBatch).
struct PackedHost {
  torch::Tensor ids, mask, positions, segments, labels, first, last, weights, cu_seqlens;
};

PackedHost AllocatePacked(const BatchShape& shape, Task task, int32_t pad_id,
                          const torch::TensorOptions& host) {
  const int64_t r = shape.rows;
  const int64_t t = shape.length;
  const int64_t e = shape.example_slots;
  PackedHost h;
  h.ids = torch::full({r, t}, pad_id, host.dtype(torch::kInt64));
  h.mask = torch::zeros({r, t}, host.dtype(torch::kInt64));
  h.positions = torch::zeros({r, t}, host.dtype(torch::kInt64));
  h.segments = torch::zeros({r, t}, host.dtype(torch::kInt64));
  h.labels = task == Task::kCausalLm     ? torch::full({r, t}, -100, host.dtype(torch::kInt64))
             : task == Task::kRegression ? torch::zeros({e}, host.dtype(torch::kFloat32))
                                         : torch::zeros({e}, host.dtype(torch::kInt64));
  h.first = torch::zeros({e}, host.dtype(torch::kInt64));
  h.last = torch::zeros({e}, host.dtype(torch::kInt64));
  h.weights = torch::zeros({e}, host.dtype(torch::kFloat32));
  // At most one padding segment per row besides the examples.
  h.cu_seqlens = torch::full({e + r + 1}, r * t, host.dtype(torch::kInt32));
  return h;
}

// Lays example `e` at (row, col) as example slot `slot` and segment `segment` of its row.
void PlaceExample(const Example& e, int64_t row, int64_t col, int64_t slot, int64_t segment,
                  int64_t length, Task task, PackedHost& h) {
  auto ids = h.ids.accessor<int64_t, 2>();
  auto mask = h.mask.accessor<int64_t, 2>();
  auto positions = h.positions.accessor<int64_t, 2>();
  auto segments = h.segments.accessor<int64_t, 2>();
  const int64_t n = static_cast<int64_t>(e.ids.size());
  for (int64_t i = 0; i < n; ++i) {
    ids[row][col + i] = e.ids[i];
    mask[row][col + i] = 1;
    positions[row][col + i] = i;
    segments[row][col + i] = segment;
  }
  h.first.accessor<int64_t, 1>()[slot] = row * length + col;
  h.last.accessor<int64_t, 1>()[slot] = row * length + col + std::max<int64_t>(n, 1) - 1;
  h.weights.accessor<float, 1>()[slot] = 1.0f;
  if (task == Task::kCausalLm) {
    auto labels = h.labels.accessor<int64_t, 2>();
    // The first token is never predicted: position col - 1 belongs to the previous example.
    for (int64_t i = 1; i < n; ++i) {
      if (e.loss_mask[i]) labels[row][col + i] = e.ids[i];
    }
  } else if (task == Task::kRegression) {
    h.labels.accessor<float, 1>()[slot] = e.target;
  } else {
    h.labels.accessor<int64_t, 1>()[slot] = e.label;
  }
}

}  // namespace

Batch MakePackedBatch(const std::vector<Example>& examples, const PackedStep& step,
                      const BatchShape& shape, Task task, int32_t pad_id, torch::Device device,
                      HostMemory host_memory) {
  const int64_t t = shape.length;
  const auto host = torch::TensorOptions().pinned_memory(device.is_cuda() &&
                                                         host_memory == HostMemory::kPinnedOnCuda);
  PackedHost h = AllocatePacked(shape, task, pad_id, host);
  auto cu = h.cu_seqlens.accessor<int32_t, 1>();
  auto segments = h.segments.accessor<int64_t, 2>();
  Batch batch;
  int64_t slot = 0;
  int64_t boundary = 0;
  for (int64_t row = 0; row < shape.rows; ++row) {
    int64_t col = 0;
    int64_t segment = 0;
    if (row < static_cast<int64_t>(step.size())) {
      for (int64_t index : step[row]) {
        const Example& e = examples[index];
        cu[boundary++] = static_cast<int32_t>(row * t + col);
        PlaceExample(e, row, col, slot++, segment++, t, task, h);
        col += std::max<int64_t>(1, static_cast<int64_t>(e.ids.size()));
        batch.tokens += static_cast<int64_t>(e.ids.size());
      }
    }
    if (col < t) {  // the row's padding: a segment of its own
      cu[boundary++] = static_cast<int32_t>(row * t + col);
      for (int64_t c = col; c < t; ++c) segments[row][c] = segment;
    }
  }
  batch.size = slot;
  batch.input_ids = h.ids.to(device, /*non_blocking=*/true);
  batch.attention_mask = h.mask.to(device, /*non_blocking=*/true);
  batch.labels = h.labels.to(device, /*non_blocking=*/true);
  batch.example_weights = h.weights.to(device, /*non_blocking=*/true);
  batch.packing.positions = h.positions.to(device, /*non_blocking=*/true);
  batch.packing.segments = h.segments.to(device, /*non_blocking=*/true);
  batch.packing.cu_seqlens = h.cu_seqlens.to(device, /*non_blocking=*/true);
  batch.packing.first = h.first.to(device, /*non_blocking=*/true);
  batch.packing.last = h.last.to(device, /*non_blocking=*/true);
  batch.packing.max_seqlen = t;
  return batch;
}

torch::Tensor Loss(const torch::Tensor& logits, const Batch& batch, Task task) {
  if (batch.packing.defined() && task != Task::kCausalLm) {
    torch::Tensor per_example =
        task == Task::kRegression
            ? (logits.to(torch::kFloat32).squeeze(-1) - batch.labels).pow(2)
            : torch::nn::functional::cross_entropy(
                  logits.to(torch::kFloat32), batch.labels,
                  torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    return (per_example * batch.example_weights).sum() / batch.example_weights.sum().clamp_min(1.0);
  }
  switch (task) {
    case Task::kCausalLm: {
      const int64_t vocab = logits.size(-1);
      auto shifted_logits = logits.slice(1, 0, logits.size(1) - 1).reshape({-1, vocab});
      auto shifted_labels = batch.labels.slice(1, 1).reshape({-1});
      return torch::nn::functional::cross_entropy(
          shifted_logits.to(torch::kFloat32), shifted_labels,
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
    }
    case Task::kRegression:
      return torch::mse_loss(logits.to(torch::kFloat32).squeeze(-1), batch.labels);
    default:
      return torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), batch.labels);
  }
}

}  // namespace attune::engine
