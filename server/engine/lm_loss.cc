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

class ChunkedCrossEntropy : public torch::autograd::Function<ChunkedCrossEntropy> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor hidden, torch::Tensor weight,
                               torch::Tensor labels, int64_t chunk_rows) {
    const int64_t n = hidden.size(0);
    torch::Tensor valid = labels.ne(-100);
    torch::Tensor safe_labels = labels.clamp_min(0);
    torch::Tensor count = valid.sum().to(torch::kFloat32).clamp_min(1.0);
    torch::Tensor lse = torch::empty({n}, hidden.options().dtype(torch::kFloat32));
    torch::Tensor total = torch::zeros({}, hidden.options().dtype(torch::kFloat32));
    for (int64_t begin = 0; begin < n; begin += chunk_rows) {
      const int64_t rows = std::min(chunk_rows, n - begin);
      torch::Tensor logits = BlockLogits(hidden, weight, begin, rows);
      torch::Tensor block_lse = torch::logsumexp(logits, -1);
      lse.narrow(0, begin, rows).copy_(block_lse);
      torch::Tensor picked =
          logits.gather(1, safe_labels.narrow(0, begin, rows).unsqueeze(1)).squeeze(1);
      total += torch::where(valid.narrow(0, begin, rows), block_lse - picked,
                            torch::zeros_like(picked))
                   .sum();
    }
    ctx->save_for_backward({hidden, weight, safe_labels, valid, lse, count});
    ctx->saved_data["chunk_rows"] = chunk_rows;
    return total / count;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& hidden = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& labels = saved[2];
    const torch::Tensor& valid = saved[3];
    const torch::Tensor& lse = saved[4];
    const torch::Tensor& count = saved[5];
    const int64_t chunk_rows = ctx->saved_data["chunk_rows"].toInt();
    const int64_t n = hidden.size(0);
    // d loss / d logits = (softmax - one_hot(label)) * grad / count on valid rows.
    const torch::Tensor scale = grad_outputs[0].to(torch::kFloat32) / count;
    torch::Tensor grad_hidden = torch::empty_like(hidden);
    for (int64_t begin = 0; begin < n; begin += chunk_rows) {
      const int64_t rows = std::min(chunk_rows, n - begin);
      torch::Tensor logits = BlockLogits(hidden, weight, begin, rows);
      torch::Tensor grad = logits.sub_(lse.narrow(0, begin, rows).unsqueeze(1)).exp_();
      grad.scatter_add_(1, labels.narrow(0, begin, rows).unsqueeze(1),
                        torch::full({rows, 1}, -1.0, grad.options()));
      grad.mul_((valid.narrow(0, begin, rows).to(torch::kFloat32) * scale).unsqueeze(1));
      grad_hidden.narrow(0, begin, rows)
          .copy_(torch::matmul(grad.to(weight.scalar_type()), weight));
    }
    return {grad_hidden, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor ChunkedLinearCrossEntropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                        const torch::Tensor& labels, int64_t chunk_rows) {
  if (chunk_rows <= 0) chunk_rows = std::max<int64_t>(1, kChunkLogits / weight.size(0));
  return ChunkedCrossEntropy::apply(hidden, weight, labels, chunk_rows);
}

}  // namespace attune::engine
