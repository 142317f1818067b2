#include "server/engine/lm_loss.h"

#include <algorithm>

namespace attune::engine {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kChunkLogits = int64_t{64} << 20;

// Logits of rows [begin, begin + rows) in the weight's dtype, then fp32.
torch::Tensor BlockLogits(const torch::Tensor& hidden, const torch::Tensor& weight, int64_t begin,
                          int64_t rows) {
  torch::Tensor h = hidden.narrow(0, begin, rows).to(weight.scalar_type());
  return torch::matmul(h, weight.t()).to(torch::kFloat32);
}

// d loss / d logits of one block, in place over its fp32 logits: (softmax - one_hot(label)) /
// count on valid rows, 0 on the others.
torch::Tensor LogitsGradient(torch::Tensor logits, const torch::Tensor& block_lse,
                             const torch::Tensor& labels, const torch::Tensor& valid,
                             const torch::Tensor& count) {
  const int64_t rows = logits.size(0);
  torch::Tensor grad = logits.sub_(block_lse.unsqueeze(1)).exp_();
  grad.scatter_add_(1, labels.unsqueeze(1), torch::full({rows, 1}, -1.0, grad.options()));
  return grad.mul_((valid.to(torch::kFloat32) / count).unsqueeze(1));
}

// With `grad_in_forward` the forward pass also forms d loss / d hidden from each block's logits
// while it holds them, so the backward pass only scales it: one vocabulary projection fewer
// than recomputing the logits there, for an [n, h] buffer that is the size of `hidden`.
class ChunkedCrossEntropy : public torch::autograd::Function<ChunkedCrossEntropy> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor hidden, torch::Tensor weight,
                               torch::Tensor labels, int64_t chunk_rows, bool grad_in_forward) {
    const int64_t n = hidden.size(0);
    torch::Tensor valid = labels.ne(-100);
    torch::Tensor safe_labels = labels.clamp_min(0);
    torch::Tensor count = valid.sum().to(torch::kFloat32).clamp_min(1.0);
    torch::Tensor total = torch::zeros({}, hidden.options().dtype(torch::kFloat32));
    torch::Tensor grad_hidden;
    if (grad_in_forward) grad_hidden = torch::empty_like(hidden);
    for (int64_t begin = 0; begin < n; begin += chunk_rows) {
      const int64_t rows = std::min(chunk_rows, n - begin);
      const torch::Tensor block_labels = safe_labels.narrow(0, begin, rows);
      const torch::Tensor block_valid = valid.narrow(0, begin, rows);
      torch::Tensor logits = BlockLogits(hidden, weight, begin, rows);
      torch::Tensor block_lse = torch::logsumexp(logits, -1);
      torch::Tensor picked = logits.gather(1, block_labels.unsqueeze(1)).squeeze(1);
      total += torch::where(block_valid, block_lse - picked, torch::zeros_like(picked)).sum();
      if (grad_in_forward) {
        torch::Tensor grad = LogitsGradient(logits, block_lse, block_labels, block_valid, count);
        grad_hidden.narrow(0, begin, rows)
            .copy_(torch::matmul(grad.to(weight.scalar_type()), weight));
      }
    }
    ctx->save_for_backward({grad_hidden});  // undefined without grad_in_forward
    return total / count;
  }

  // Only reached with grad_in_forward: autograd calls backward only when hidden needs a
  // gradient, and then the forward pass has already formed it.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const torch::Tensor grad_hidden = ctx->get_saved_variables()[0];
    TORCH_CHECK(grad_hidden.defined(), "ChunkedLinearCrossEntropy: no gradient was formed");
    const torch::Tensor scale = grad_outputs[0].to(grad_hidden.scalar_type());
    return {grad_hidden * scale, torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

torch::Tensor ChunkedLinearCrossEntropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                        const torch::Tensor& labels, int64_t chunk_rows) {
  if (chunk_rows <= 0) chunk_rows = std::max<int64_t>(1, kChunkLogits / weight.size(0));
  const bool grad_in_forward = hidden.requires_grad() && torch::GradMode::is_enabled();
  return ChunkedCrossEntropy::apply(hidden, weight, labels, chunk_rows, grad_in_forward);
}

}  // namespace attune::engine
