// Scaled dot-product attention shared by the encoder and decoder architectures. Internal to the
// engine.
//
// On LibTorch >= 2.0 this calls at::scaled_dot_product_attention, which picks a fused kernel on
// CUDA: flash attention when there is no explicit mask (no padding; `causal` for decoders),
// memory-efficient attention with a mask. From 2.5 grouped-query attention goes to the kernel
// as is (enable_gqa), so the key/value heads are never copied out to one per query head. On
// LibTorch 1.13 (Debian's CPU build) it computes softmax(Q K^T / sqrt(d) + mask) V directly,
// with the softmax in fp32. Every path gives the same numbers within rounding.
#ifndef ATTUNE_SERVER_ENGINE_ATTENTION_H_
#define ATTUNE_SERVER_ENGINE_ATTENTION_H_

#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <limits>

#include "server/engine/torch_version.h"

namespace attune::engine {

// An additive mask from a boolean one (true = may attend): 0 where allowed, the dtype's lowest
// finite value elsewhere (finite, so a row with nothing allowed stays free of NaN).
inline torch::Tensor AdditiveMask(const torch::Tensor& allowed, torch::Dtype dtype) {
  const double lowest = dtype == torch::kFloat16
                            ? static_cast<double>(std::numeric_limits<c10::Half>::lowest())
                        : dtype == torch::kBFloat16
                            ? static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest())
                            : static_cast<double>(std::numeric_limits<float>::lowest());
  return torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(dtype).device(allowed.device()))
      .masked_fill(allowed.logical_not(), lowest);
}

// Each of k's (or v's) heads serves q_heads / kv_heads consecutive query heads: repeats them.
inline torch::Tensor RepeatKvHeads(const torch::Tensor& t, int64_t q_heads) {
  const int64_t kv_heads = t.size(1);
  if (kv_heads == q_heads) return t;
  return t.repeat_interleave(q_heads / kv_heads, 1);
}

// q: [batch, heads, q_len, d]; k, v: [batch, kv_heads, k_len, d] with heads a multiple of
// kv_heads (grouped-query attention). `mask`: additive, broadcastable to [batch, heads, q_len,
// k_len] (converted to q's dtype, which under CUDA autocast may differ from the residual
// stream's), or undefined for none. `causal` (only with an undefined mask, q_len == k_len):
// position i attends to positions <= i. Dropout on the attention weights when dropout_p > 0.
// Returns [batch, heads, q_len, d].
inline torch::Tensor DotProductAttention(const torch::Tensor& q, const torch::Tensor& k,
                                         const torch::Tensor& v, const torch::Tensor& mask,
                                         bool causal, double dropout_p) {
  const int64_t heads = q.size(1);
  const torch::Tensor kk = k.to(q.scalar_type());
  const torch::Tensor vv = v.to(q.scalar_type());
  c10::optional<torch::Tensor> m;
  if (mask.defined()) m = mask.to(q.scalar_type());
  const bool is_causal = causal && !mask.defined();
#if ATTUNE_TORCH_AT_LEAST(2, 5)
  return at::scaled_dot_product_attention(q, kk, vv, m, dropout_p, is_causal,
                                          /*scale=*/c10::nullopt,
                                          /*enable_gqa=*/kk.size(1) != heads);
#elif TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, RepeatKvHeads(kk, heads), RepeatKvHeads(vv, heads), m,
                                          dropout_p, is_causal);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  torch::Tensor scores = torch::matmul(q, RepeatKvHeads(kk, heads).transpose(-2, -1)) * scale;
  if (m.has_value()) scores = scores + *m;
  if (is_causal) {
    const int64_t n = q.size(2);
    torch::Tensor allowed =
        torch::ones({n, n}, torch::TensorOptions().dtype(torch::kBool).device(q.device())).tril();
    scores = scores + AdditiveMask(allowed, q.scalar_type());
  }
  torch::Tensor probs = torch::softmax(scores, -1, torch::kFloat32).to(q.scalar_type());
  if (dropout_p > 0) probs = torch::dropout(probs, dropout_p, /*train=*/true);
  return torch::matmul(probs, RepeatKvHeads(vv, heads));
#endif
}

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_ATTENTION_H_
