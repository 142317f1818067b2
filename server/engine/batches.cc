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

torch::Tensor Loss(const torch::Tensor& logits, const Batch& batch, Task task) {
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
