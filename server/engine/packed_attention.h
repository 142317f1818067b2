// Attention inside each example of a packed batch (packing.h): varlen attention. Internal to the
// engine.
//
// Three implementations, one meaning (softmax(Q K^T / sqrt(d)) V over the tokens of the same
// segment; causal for decoders):
//   - the varlen kernels: on CUDA, bf16/fp16, LibTorch >= 2.5, head_dim a multiple of 8 up to
//     256, LibTorch's flash attention (at::_flash_attention_forward / _backward) or
//     memory-efficient attention (at::_efficient_attention_forward / _backward) over the
//     flattened rows with cumulative sequence lengths, each wrapped in an autograd function
//     below because their schema is private and changes between versions. No padding or
//     cross-example score is computed.
//   - the block mask: a block-diagonal additive mask [rows, 1, length, length] (same segment,
//     and j <= i when causal) with DotProductAttention (attention.h). The CPU, and CI, run this.
// All give the unpacked examples' attention to rounding (packed_model_test.cc).
#ifndef ATTUNE_SERVER_ENGINE_PACKED_ATTENTION_H_
#define ATTUNE_SERVER_ENGINE_PACKED_ATTENTION_H_

#include <torch/torch.h>

#include "server/engine/model.h"

namespace attune::engine {

// PackedAttentionKernel (trainer.h) picks the implementation. kAuto runs the flash varlen
// kernel where it applies, except on short rows (kBlockMaskMaxLength tokens at most) without
// grouped-query heads, where the block mask runs: there SDPA's memory-efficient kernel over the
// mask was as fast as the fastest varlen kernel and needed less memory. Measured on the H200
// (2026-12-02, commit 68501eb, RoBERTa-base, 32 rows x 128, GLUE-like lengths, ~164 examples a
// step): block mask 6.6 ms/step, peak 1.36 GiB (the full-row case's); memory-efficient varlen
// 6.6 ms, 1.43 GiB; flash varlen 7.9 ms, 1.43 GiB. Both varlen backwards size fp32 scratch per
// segment, as we read their sources (the memory-efficient one: num_batches x num_heads x
// workspace_strideBH floats, num_batches the segment count and the queries the longest
// segment; flash: its dQ accumulator, 128 rows per segment). A step's segments are its fixed
// example slots plus row padding (about 270 here, by a simulation of the packing): up to about
// 0.1 GiB of scratch, where the mask's is per row (32 rows).
//
// The longest row for which kAuto prefers the block mask. Measured only at 128; the mask's dense
// scores grow with the square of the row length, so 256 is a guess at where it stops paying, and
// longer rows (the 1.1B's 2048, measured with the varlen kernel) keep the varlen kernel.
inline constexpr int64_t kBlockMaskMaxLength = 256;

// One forward pass's packed attention: built once per forward, called once per layer (the
// reference mask is made on the first call that needs it and reused by the other layers).
class PackedAttention {
 public:
  PackedAttention(const PackedLayout& packing, bool causal, PackedAttentionKernel kernel)
      : packing_(packing), causal_(causal), kernel_(kernel) {}

  // q: [rows, length, heads, d]; k, v: [rows, length, kv_heads, d], heads a multiple of
  // kv_heads. Dropout on the attention weights when dropout_p > 0. Returns [rows, length,
  // heads, d].
  torch::Tensor operator()(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                           double dropout_p);

  // The kernel that runs for q and k: kernel's choice where this build and the tensors allow
  // it (CUDA, LibTorch >= 2.5, bf16/fp16, head_dim a multiple of 8 up to 256; the efficient
  // one also needs as many k/v heads as q heads), else kBlockMask. Exposed for tests.
  PackedAttentionKernel KernelFor(const torch::Tensor& q, const torch::Tensor& k) const;

 private:
  const PackedLayout& packing_;
  const bool causal_;
  const PackedAttentionKernel kernel_;
  torch::Tensor mask_;  // the reference's block mask, made on first use
};

// The reference's additive mask: 0 where token j may attend to token i's segment, the dtype's
// lowest value elsewhere. [rows, 1, length, length].
torch::Tensor PackedBlockMask(const PackedLayout& packing, bool causal, torch::Dtype dtype);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_PACKED_ATTENTION_H_
