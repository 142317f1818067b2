#include "server/engine/lora.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace attune::engine {
namespace {

torch::Tensor Randn(std::vector<int64_t> shape, uint64_t seed) {
  torch::Generator g = at::detail::createCPUGenerator(seed);
  return torch::empty(shape).normal_(0, 1, g);
}

LoraSettings Settings(int rank, double alpha, double dropout = 0.0, bool rslora = false) {
  LoraSettings s;
  s.rank = rank;
  s.alpha = alpha;
  s.dropout = dropout;
  s.use_rslora = rslora;
  return s;
}

TEST(LoraTest, ScaleIsAlphaOverRankOrOverSqrtRankWithRsLora) {
  EXPECT_DOUBLE_EQ(LoraScale(Settings(8, 16)), 2.0);
  EXPECT_DOUBLE_EQ(LoraScale(Settings(4, 8, 0, /*rslora=*/true)), 4.0);
}

TEST(LoraTest, StartsEqualToTheBaseLayerWithBZeroAndABounded) {
  torch::Generator gen = at::detail::createCPUGenerator(7);
  torch::Tensor w = Randn({6, 5}, 1), b = Randn({6}, 2), x = Randn({4, 5}, 3);
  AdaptedLinear layer(w, b, AdapterKind::kLora, Settings(3, 6), &gen);
  EXPECT_TRUE(torch::equal(layer->lora_b(), torch::zeros({6, 3})));
  EXPECT_EQ(layer->lora_a().sizes(), (std::vector<int64_t>{3, 5}));
  EXPECT_LE(layer->lora_a().abs().max().item<double>(), 1.0 / std::sqrt(5.0));
  EXPECT_GT(layer->lora_a().abs().max().item<double>(), 0.2);  // actually drawn, not zero
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(layer->forward(x), torch::linear(x, w, b)));
}

TEST(LoraTest, SameSeedSameA) {
  torch::Generator g1 = at::detail::createCPUGenerator(11);
  torch::Generator g2 = at::detail::createCPUGenerator(11);
  torch::Generator g3 = at::detail::createCPUGenerator(12);
  torch::Tensor w = Randn({4, 8}, 1);
  AdaptedLinear a(w, torch::Tensor(), AdapterKind::kLora, Settings(2, 4), &g1);
  AdaptedLinear b(w, torch::Tensor(), AdapterKind::kLora, Settings(2, 4), &g2);
  AdaptedLinear c(w, torch::Tensor(), AdapterKind::kLora, Settings(2, 4), &g3);
  EXPECT_TRUE(torch::equal(a->lora_a(), b->lora_a()));
  EXPECT_FALSE(torch::equal(a->lora_a(), c->lora_a()));
}

TEST(LoraTest, EqualsMergedMatrix) {
  for (bool rslora : {false, true}) {
    torch::Generator gen = at::detail::createCPUGenerator(7);
    torch::Tensor w = Randn({6, 5}, 1), b = Randn({6}, 2), x = Randn({2, 4, 5}, 3);
    AdaptedLinear layer(w, b, AdapterKind::kLora, Settings(3, 6, 0.0, rslora), &gen);
    torch::NoGradGuard no_grad;
    layer->lora_b().copy_(Randn({6, 3}, 4));
    const double scale = rslora ? 6 / std::sqrt(3.0) : 2.0;
    torch::Tensor merged = w + scale * torch::matmul(layer->lora_b(), layer->lora_a());
    torch::Tensor expected = torch::linear(x, merged, b);
    torch::Tensor got = layer->forward(x);
    EXPECT_TRUE(torch::allclose(got, expected, /*rtol=*/1e-5, /*atol=*/1e-5))
        << (got - expected).abs().max().item<double>();
    EXPECT_GT((got - torch::linear(x, w, b)).abs().max().item<double>(), 0.1);
  }
}

TEST(LoraTest, DropoutOnlyInTrainingMode) {
  torch::manual_seed(0);
  torch::Generator gen = at::detail::createCPUGenerator(7);
  torch::Tensor w = Randn({6, 5}, 1), x = Randn({8, 5}, 3);
  AdaptedLinear layer(w, torch::Tensor(), AdapterKind::kLora, Settings(3, 6, 0.5), &gen);
  torch::NoGradGuard no_grad;
  layer->lora_b().copy_(Randn({6, 3}, 4));
  torch::Tensor merged = w + 2.0 * torch::matmul(layer->lora_b(), layer->lora_a());
  layer->eval();
  EXPECT_TRUE(torch::allclose(layer->forward(x), torch::linear(x, merged), 1e-5, 1e-5));
  layer->train();
  torch::Tensor trained = layer->forward(x);
  EXPECT_FALSE(torch::allclose(trained, torch::linear(x, merged), 1e-3, 1e-3));
}

TEST(LoraTest, OnlyAdapterGetsGradientsAndFrozenWeightsHaveNoGradBuffer) {
  torch::Generator gen = at::detail::createCPUGenerator(7);
  torch::Tensor w = Randn({6, 5}, 1), b = Randn({6}, 2), x = Randn({4, 5}, 3);
  AdaptedLinear layer(w, b, AdapterKind::kLora, Settings(3, 6), &gen);
  {
    torch::NoGradGuard no_grad;
    layer->lora_b().copy_(Randn({6, 3}, 4));
  }
  layer->forward(x).pow(2).sum().backward();
  EXPECT_FALSE(layer->weight().requires_grad());
  EXPECT_FALSE(layer->weight().grad().defined());
  EXPECT_FALSE(layer->bias().grad().defined());
  ASSERT_TRUE(layer->lora_a().grad().defined());
  ASSERT_TRUE(layer->lora_b().grad().defined());
  EXPECT_GT(layer->lora_a().grad().abs().sum().item<double>(), 0);
  EXPECT_GT(layer->lora_b().grad().abs().sum().item<double>(), 0);
}

TEST(LoraTest, FullMethodTrainsTheWeightAndBiasInFp32) {
  torch::Generator gen = at::detail::createCPUGenerator(7);
  torch::Tensor w = Randn({6, 5}, 1).to(torch::kBFloat16), b = Randn({6}, 2).to(torch::kBFloat16);
  AdaptedLinear layer(w, b, AdapterKind::kFull, Settings(3, 6), &gen);
  EXPECT_TRUE(layer->weight().requires_grad());
  EXPECT_EQ(layer->weight().scalar_type(), torch::kFloat32);
  EXPECT_FALSE(layer->lora_a().defined());
  std::vector<TrainableParam> params =
      SiteParameters({{"model.layers.0.self_attn.q_proj", "q", layer}});
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].name, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(params[0].role, ParamRole::kFull);
  EXPECT_FALSE(params[0].no_decay);
  EXPECT_EQ(params[1].name, "model.layers.0.self_attn.q_proj.bias");
  EXPECT_TRUE(params[1].no_decay);
}

TEST(LoraTest, SiteParametersUsePeftNames) {
  torch::Generator gen = at::detail::createCPUGenerator(7);
  AdaptedLinear q(Randn({6, 5}, 1), torch::Tensor(), AdapterKind::kLora, Settings(3, 6), &gen);
  AdaptedLinear k(Randn({6, 5}, 1), torch::Tensor(), AdapterKind::kNone, Settings(3, 6), &gen);
  std::vector<TrainableParam> params =
      SiteParameters({{"roberta.encoder.layer.0.attention.self.query", "q", q},
                      {"roberta.encoder.layer.0.attention.self.key", "k", k}});
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].name,
            "base_model.model.roberta.encoder.layer.0.attention.self.query.lora_A.weight");
  EXPECT_EQ(params[0].role, ParamRole::kLoraA);
  EXPECT_EQ(params[0].projection, "q");
  EXPECT_EQ(params[1].name,
            "base_model.model.roberta.encoder.layer.0.attention.self.query.lora_B.weight");
  EXPECT_EQ(params[1].role, ParamRole::kLoraB);
}

TEST(LoraTest, Bf16FrozenWeightWithFp32Adapter) {
  torch::Generator gen = at::detail::createCPUGenerator(7);
  torch::Tensor w = Randn({6, 5}, 1), x = Randn({4, 5}, 3);
  AdaptedLinear layer(w.to(torch::kBFloat16), torch::Tensor(), AdapterKind::kLora, Settings(3, 6),
                      &gen);
  EXPECT_EQ(layer->lora_a().scalar_type(), torch::kFloat32);
  torch::NoGradGuard no_grad;
  layer->lora_b().copy_(Randn({6, 3}, 4));
  torch::Tensor merged = w + 2.0 * torch::matmul(layer->lora_b(), layer->lora_a());
  torch::Tensor got = layer->forward(x.to(torch::kBFloat16));
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::allclose(got.to(torch::kFloat32), torch::linear(x, merged), 0.05, 0.1));
}

}  // namespace
}  // namespace attune::engine
