#include "server/engine/packed_attention.h"

#include <cmath>

#include "server/engine/attention.h"
#include "server/engine/torch_version.h"

namespace attune::engine {
namespace {

#if ATTUNE_TORCH_AT_LEAST(2, 5)

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// LibTorch's flash attention over cumulative sequence lengths. q: [tokens, heads, d]; k, v:
// [tokens, kv_heads, d]. The forward's outputs 2 and 3 are the dropout's philox seed and offset,
// which the backward needs to redraw the same mask.
class VarlenFlashFunction : public torch::autograd::Function<VarlenFlashFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& cu_seqlens,
                               int64_t max_seqlen, double dropout_p, bool causal) {
    auto result = at::_flash_attention_forward(q, k, v, cu_seqlens, cu_seqlens, max_seqlen,
                                               max_seqlen, dropout_p, causal,
                                               /*return_debug_mask=*/false);
    torch::Tensor out = std::get<0>(result);
    ctx->save_for_backward(
        {q, k, v, out, std::get<1>(result), cu_seqlens, std::get<2>(result), std::get<3>(result)});
    ctx->saved_data["max_seqlen"] = max_seqlen;
    ctx->saved_data["dropout_p"] = dropout_p;
    ctx->saved_data["causal"] = causal;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list s = ctx->get_saved_variables();
    const int64_t max_seqlen = ctx->saved_data["max_seqlen"].toInt();
    auto result = at::_flash_attention_backward(
        grads[0].contiguous(), s[0], s[1], s[2], s[3], s[4], s[5], s[5], max_seqlen, max_seqlen,
        ctx->saved_data["dropout_p"].toDouble(), ctx->saved_data["causal"].toBool(), s[6], s[7]);
    return {std::get<0>(result), std::get<1>(result), std::get<2>(result), torch::Tensor(),
            torch::Tensor(),     torch::Tensor(),     torch::Tensor()};
  }
};

// LibTorch's memory-efficient attention over cumulative sequence lengths: q, k, v [1, tokens,
// heads, d] (one "batch" whose sequences cu_seqlens delimits). custom_mask_type 1 is causal
// from each sequence's top-left, the per-example causal mask. The forward's outputs 2 and 3
// are the dropout's philox seed and offset.
class VarlenEfficientFunction : public torch::autograd::Function<VarlenEfficientFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& cu_seqlens,
                               int64_t max_seqlen, double dropout_p, bool causal) {
    const int64_t mask_type = causal ? 1 : 0;
    auto result = at::_efficient_attention_forward(q, k, v, /*bias=*/c10::nullopt, cu_seqlens,
                                                   cu_seqlens, max_seqlen, max_seqlen, dropout_p,
                                                   mask_type, /*compute_log_sumexp=*/true);
    torch::Tensor out = std::get<0>(result);
    ctx->save_for_backward(
        {q, k, v, out, std::get<1>(result), cu_seqlens, std::get<2>(result), std::get<3>(result)});
    ctx->saved_data["max_seqlen"] = max_seqlen;
    ctx->saved_data["dropout_p"] = dropout_p;
    ctx->saved_data["mask_type"] = mask_type;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list s = ctx->get_saved_variables();
    const int64_t max_seqlen = ctx->saved_data["max_seqlen"].toInt();
    auto result = at::_efficient_attention_backward(
        grads[0].contiguous(), s[0], s[1], s[2], /*bias=*/c10::nullopt, s[3], s[5], s[5],
        max_seqlen, max_seqlen, s[4], ctx->saved_data["dropout_p"].toDouble(), s[6], s[7],
        ctx->saved_data["mask_type"].toInt(), /*bias_requires_grad=*/false);
    return {std::get<0>(result), std::get<1>(result), std::get<2>(result), torch::Tensor(),
            torch::Tensor(),     torch::Tensor(),     torch::Tensor()};
  }
};

#endif  // ATTUNE_TORCH_AT_LEAST(2, 5)

}  // namespace

torch::Tensor PackedBlockMask(const PackedLayout& packing, bool causal, torch::Dtype dtype) {
  const int64_t rows = packing.segments.size(0);
  const int64_t length = packing.segments.size(1);
  torch::Tensor same =
      packing.segments.view({rows, 1, length, 1}).eq(packing.segments.view({rows, 1, 1, length}));
  if (causal) {
    torch::Tensor lower =
        torch::ones({length, length},
                    torch::TensorOptions().dtype(torch::kBool).device(packing.segments.device()))
            .tril();
    same = same.logical_and(lower.view({1, 1, length, length}));
  }
  return AdditiveMask(same, dtype);
}

PackedAttentionKernel PackedAttention::KernelFor(const torch::Tensor& q,
                                                 const torch::Tensor& k) const {
  using K = PackedAttentionKernel;
#if ATTUNE_TORCH_AT_LEAST(2, 5)
  const auto type = q.scalar_type();
  const bool varlen_ok = q.is_cuda() && (type == torch::kBFloat16 || type == torch::kFloat16) &&
                         q.size(-1) % 8 == 0 && q.size(-1) <= 256;
  const bool same_heads = k.size(2) == q.size(2);
  if (!varlen_ok || kernel_ == K::kBlockMask) return K::kBlockMask;
  if (kernel_ == K::kEfficientVarlen) return same_heads ? K::kEfficientVarlen : K::kBlockMask;
  if (kernel_ == K::kAuto && q.size(1) <= kBlockMaskMaxLength && same_heads) return K::kBlockMask;
  return K::kFlashVarlen;
#else
  (void)q;
  (void)k;
  return K::kBlockMask;
#endif
}

torch::Tensor PackedAttention::operator()(const torch::Tensor& q, const torch::Tensor& k,
                                          const torch::Tensor& v, double dropout_p) {
  const int64_t rows = q.size(0);
  const int64_t length = q.size(1);
  const int64_t heads = q.size(2);
  const int64_t d = q.size(3);
#if ATTUNE_TORCH_AT_LEAST(2, 5)
  const PackedAttentionKernel kernel = KernelFor(q, k);
  if (kernel != PackedAttentionKernel::kBlockMask) {
    const int64_t tokens = rows * length;
    const int64_t kv_heads = k.size(2);
    // The flash kernel takes [tokens, heads, d]; the efficient one a batch of one sequence.
    const std::vector<int64_t> q_shape = {tokens, heads, d};
    const std::vector<int64_t> kv_shape = {tokens, kv_heads, d};
    const torch::Tensor kk = k.to(q.scalar_type()).reshape(kv_shape);
    const torch::Tensor vv = v.to(q.scalar_type()).reshape(kv_shape);
    torch::Tensor out =
        kernel == PackedAttentionKernel::kFlashVarlen
            ? VarlenFlashFunction::apply(q.reshape(q_shape), kk, vv, packing_.cu_seqlens,
                                         packing_.max_seqlen, dropout_p, causal_)
            : VarlenEfficientFunction::apply(q.reshape(q_shape).unsqueeze(0), kk.unsqueeze(0),
                                             vv.unsqueeze(0), packing_.cu_seqlens,
                                             packing_.max_seqlen, dropout_p, causal_);
    return out.view({rows, length, heads, d});
  }
#endif
  if (!mask_.defined()) mask_ = PackedBlockMask(packing_, causal_, q.scalar_type());
  torch::Tensor a = DotProductAttention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                        mask_, /*causal=*/false, dropout_p);
  return a.transpose(1, 2);
}

}  // namespace attune::engine
