// A training or evaluation batch as tensors, the task's loss, and CUDA bf16 autocast.
//
// Internal to the engine (LibTorch). `MakeBatch` pads examples to the longest in the batch
// (dynamic padding), builds labels for the task (class ids, regression targets, or next-token
// labels with -100 where no loss is taken), and copies to the device, asynchronously from pinned
// host memory on CUDA.
#ifndef ATTUNE_SERVER_ENGINE_BATCHES_H_
#define ATTUNE_SERVER_ENGINE_BATCHES_H_

#include <torch/torch.h>
#include <torch/version.h>
#if TORCH_VERSION_MAJOR >= 2
#include <ATen/autocast_mode.h>
#endif

#include <cstdint>
#include <tuple>
#include <vector>

#include "common/job_spec.h"
#include "server/engine/data.h"
#include "server/engine/model.h"
#include "server/engine/packing.h"

namespace attune::engine {

struct Batch {
  torch::Tensor input_ids;       // [B, T] int64
  torch::Tensor attention_mask;  // [B, T] int64
  // [B] int64 | [B] float | [B, T] int64 (-100 = no loss); packed classification and
  // regression: [E], one per example slot.
  torch::Tensor labels;
  int64_t tokens = 0;  // real (non-padding) tokens
  int64_t size = 0;    // real examples
  // Packed batches only (MakePackedBatch): the layout, and [E] fp32 weights of the example
  // slots (1 for an example, 0 for an unused slot), which the loss averages over.
  PackedLayout packing;
  torch::Tensor example_weights;
};

enum class MaskMode {
  kAlways,             // the batch always carries an attention mask
  kOmitWhenNoPadding,  // no mask (undefined) when every row is full: lets SDPA use flash attention
};

enum class HostMemory {
  kPinnedOnCuda,  // pinned host tensors when the device is CUDA (asynchronous copies)
  kPageable,      // ordinary host memory
};

// Builds a batch on the host and copies it to `device`. On CUDA the host tensors are pinned, so
// the copies are asynchronous and overlap the previous step's work.
// The shape MakeBatch gives the examples at `indices`: rows, padded length (the longest
// example's), and whether the batch carries an attention mask under `mask_mode`.
struct BatchShape {
  int64_t rows = 0;
  int64_t length = 1;
  bool masked = false;
  int64_t example_slots = 0;  // packed batches: examples they can hold; 0 = not packed
  bool operator<(const BatchShape& o) const {
    return std::tie(rows, length, masked, example_slots) <
           std::tie(o.rows, o.length, o.masked, o.example_slots);
  }
  bool operator==(const BatchShape& o) const { return !(*this < o) && !(o < *this); }
  bool operator!=(const BatchShape& o) const { return !(*this == o); }
};
BatchShape ShapeOf(const std::vector<Example>& examples, const std::vector<int64_t>& indices,
                   MaskMode mask_mode);

Batch MakeBatch(const std::vector<Example>& examples, const std::vector<int64_t>& indices,
                Task task, int32_t pad_id, torch::Device device,
                MaskMode mask_mode = MaskMode::kAlways,
                HostMemory host_memory = HostMemory::kPinnedOnCuda);

// A packed step as a batch of the fixed `shape` (rows, length = the row length, example_slots):
// the step's rows laid out left to right, then empty rows up to shape.rows; positions restart
// at 0 for each example; causal LM labels are -100 on padding, on tokens without loss and on
// each example's first token (so that no loss crosses from one example to the next).
Batch MakePackedBatch(const std::vector<Example>& examples, const PackedStep& step,
                      const BatchShape& shape, Task task, int32_t pad_id, torch::Device device,
                      HostMemory host_memory = HostMemory::kPinnedOnCuda);

// Mean loss of a batch, in fp32 (a packed batch's: the mean over its examples, or over its
// labelled tokens for causal LM). For causal LM, token t predicts token t+1, averaged over the
// tokens that carry a label.
torch::Tensor Loss(const torch::Tensor& logits, const Batch& batch, Task task);

// Turns on bf16 autocast for CUDA on this thread for the guard's lifetime.
class AutocastGuard {
 public:
  explicit AutocastGuard(torch::Device device) : enabled_(device.is_cuda()) {
#if TORCH_VERSION_MAJOR >= 2
    if (enabled_) {
      at::autocast::set_autocast_enabled(at::kCUDA, true);
      at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    }
#endif
  }
  ~AutocastGuard() {
#if TORCH_VERSION_MAJOR >= 2
    if (enabled_) {
      at::autocast::set_autocast_enabled(at::kCUDA, false);
      at::autocast::clear_cache();
    }
#endif
  }

 private:
  bool enabled_;
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_BATCHES_H_
