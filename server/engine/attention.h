// Scaled dot-product attention shared by the encoder and decoder architectures. Internal to the
// engine.
//
// On LibTorch >= 2.0 this calls at::scaled_dot_product_attention (fused kernels on CUDA); on
// LibTorch 1.13 (Debian's CPU build) it computes softmax(Q K^T / sqrt(d) + mask) V directly,
// with the softmax in fp32. Both take the same additive mask and give the same numbers within
// fp32 rounding.
#ifndef ATTUNE_SERVER_ENGINE_ATTENTION_H_
#define ATTUNE_SERVER_ENGINE_ATTENTION_H_

#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <limits>

namespace attune::engine {

// An additive mask from a boolean one (true = may attend): 0 where allowed, the dtype's lowest
// finite value elsewhere (finite, so a row with nothing allowed stays free of NaN).
inline torch::Tensor AdditiveMask(const torch::Tensor& allowed, torch::Dtype dtype) {
  const double lowest = dtype == torch::kFloat16 ? -65504.0
                                                 : static_cast<double>(std::numeric_limits<float>::lowest());
  return torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(dtype).device(allowed.device()))
      .masked_fill(allowed.logical_not(), lowest);
}

// q: [batch, heads, q_len, d]; k, v: [batch, heads, k_len, d]; mask: additive, broadcastable to
// [batch, heads, q_len, k_len] (converted to q's dtype, which under CUDA autocast may differ
// from the residual stream's). Dropout on the attention weights when
// dropout_p > 0. Returns [batch, heads, q_len, d].
inline torch::Tensor DotProductAttention(const torch::Tensor& q, const torch::Tensor& k,
                                         const torch::Tensor& v, const torch::Tensor& mask,
                                         double dropout_p) {
  const torch::Tensor m = mask.to(q.scalar_type());
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v.to(q.scalar_type()), m, dropout_p,
                                          /*is_causal=*/false);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) * scale + m;
  torch::Tensor probs = torch::softmax(scores, -1, torch::kFloat32).to(q.scalar_type());
  if (dropout_p > 0) probs = torch::dropout(probs, dropout_p, /*train=*/true);
  return torch::matmul(probs, v.to(q.scalar_type()));
#endif
}

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_ATTENTION_H_
