// ChunkedLinearCrossEntropy against LibTorch's cross_entropy on the full logits.
#include "server/engine/lm_loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace attune::engine {
namespace {

struct Reference {
  torch::Tensor loss, grad;
};

Reference PlainLoss(const torch::Tensor& hidden, const torch::Tensor& weight,
                    const torch::Tensor& labels) {
  torch::Tensor h = hidden.detach().clone().set_requires_grad(true);
  torch::Tensor loss = torch::nn::functional::cross_entropy(
      torch::matmul(h, weight.t()), labels,
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
  loss.backward();
  return {loss.detach(), h.grad()};
}

TEST(ChunkedLinearCrossEntropyTest, MatchesCrossEntropyOnTheFullLogits) {
  torch::manual_seed(3);
  const int64_t n = 23, hidden_size = 16, vocab = 50;
  torch::Tensor weight = torch::randn({vocab, hidden_size});
  torch::Tensor labels = torch::randint(0, vocab, {n}, torch::kInt64);
  labels.index_put_({torch::tensor({0, 5, 22})}, -100);  // ignored positions
  torch::Tensor hidden = torch::randn({n, hidden_size});
  Reference want = PlainLoss(hidden, weight, labels);
  // One block, blocks that divide n, and blocks with a remainder.
  for (int64_t chunk : {0, 1, 4, 7, 23, 100}) {
    torch::Tensor h = hidden.clone().set_requires_grad(true);
    torch::Tensor loss = ChunkedLinearCrossEntropy(h, weight, labels, chunk);
    ASSERT_EQ(loss.dim(), 0);
    EXPECT_NEAR(loss.item<double>(), want.loss.item<double>(), 1e-5) << "chunk " << chunk;
    (loss * 3.0).backward();  // the incoming gradient scales the result
    EXPECT_TRUE(torch::allclose(h.grad(), want.grad * 3.0, 1e-5, 1e-6)) << "chunk " << chunk;
  }
}

TEST(ChunkedLinearCrossEntropyTest, FrozenWeightGetsNoGradientAndAllIgnoredIsZero) {
  torch::manual_seed(4);
  torch::Tensor weight = torch::randn({10, 4});
  torch::Tensor hidden = torch::randn({6, 4}).set_requires_grad(true);
  torch::Tensor labels = torch::full({6}, -100, torch::kInt64);
  torch::Tensor loss = ChunkedLinearCrossEntropy(hidden, weight, labels, 4);
  EXPECT_EQ(loss.item<double>(), 0.0);
  loss.backward();
  EXPECT_EQ(hidden.grad().abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(weight.grad().defined());
}

// Evaluation: without gradient mode (or without a hidden that needs one) the same loss, and no
// gradient is formed.
TEST(ChunkedLinearCrossEntropyTest, WithoutGradientsTheLossIsTheSame) {
  torch::manual_seed(5);
  torch::Tensor weight = torch::randn({30, 8});
  torch::Tensor hidden = torch::randn({11, 8});
  torch::Tensor labels = torch::randint(0, 30, {11}, torch::kInt64);
  const double want = PlainLoss(hidden, weight, labels).loss.item<double>();
  EXPECT_NEAR(ChunkedLinearCrossEntropy(hidden, weight, labels, 3).item<double>(), want, 1e-5);
  torch::NoGradGuard no_grad;
  torch::Tensor h = hidden.clone().set_requires_grad(true);
  torch::Tensor loss = ChunkedLinearCrossEntropy(h, weight, labels, 3);
  EXPECT_NEAR(loss.item<double>(), want, 1e-5);
  EXPECT_FALSE(loss.requires_grad());
}

}  // namespace
}  // namespace attune::engine
