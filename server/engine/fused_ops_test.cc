// fused_ops.h: the reference expressions against values computed here element by element, and,
// where a CUDA device and the kernels exist (the GPU machine: tests/gpu/run_checks.sh), the fused
// kernels against the reference, forward and backward.
#include "server/engine/fused_ops.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>

namespace attune::engine {
namespace {

// cos and sin [seq, half] for the rotary tests: position times a frequency per pair.
std::pair<torch::Tensor, torch::Tensor> Angles(int64_t seq, int64_t half) {
  torch::Tensor inv = 1.0 / torch::pow(10000.0, torch::arange(half, torch::kFloat32) / half);
  torch::Tensor freqs = torch::outer(torch::arange(seq, torch::kFloat32), inv);
  return {freqs.cos().contiguous(), freqs.sin().contiguous()};
}

TEST(FusedOpsTest, RopeRotatesEachPairByItsPositionsAngle) {
  torch::manual_seed(1);
  const int64_t batch = 2, seq = 5, heads = 3, dim = 8, half = dim / 2;
  torch::Tensor x = torch::randn({batch, seq, heads, dim}, torch::kFloat64).to(torch::kFloat32);
  auto [cos, sin] = Angles(seq, half);
  torch::Tensor out = ApplyRope(x, cos, sin, Kernels::kFused);  // the CPU runs the reference
  ASSERT_EQ(out.sizes(), x.sizes());
  ASSERT_TRUE(out.is_contiguous());
  auto in = x.accessor<float, 4>();
  auto got = out.accessor<float, 4>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < seq; ++t) {
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t i = 0; i < half; ++i) {
          const double angle = t / std::pow(10000.0, static_cast<double>(i) / half);
          const double a = in[b][t][h][i], c = in[b][t][h][i + half];
          EXPECT_NEAR(got[b][t][h][i], a * std::cos(angle) - c * std::sin(angle), 2e-5);
          EXPECT_NEAR(got[b][t][h][i + half], c * std::cos(angle) + a * std::sin(angle), 2e-5);
        }
      }
    }
  }
}

TEST(FusedOpsTest, RopeGradientIsTheInverseRotation) {
  torch::manual_seed(2);
  auto [cos, sin] = Angles(4, 2);
  torch::Tensor x = torch::randn({1, 4, 2, 4}).set_requires_grad(true);
  torch::Tensor g = torch::randn({1, 4, 2, 4});
  ApplyRope(x, cos, sin, Kernels::kFused).backward(g);
  // Rotating the gradient back by the same angles: rope with sin negated.
  torch::Tensor want = ApplyRope(g, cos, -sin, Kernels::kFused);
  EXPECT_TRUE(torch::allclose(x.grad(), want, 1e-5, 1e-6));
}

TEST(FusedOpsTest, RmsNormAndSiluMulReferences) {
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({3, 7});
  torch::Tensor w = torch::randn({7});
  torch::Tensor want = w * x / torch::sqrt(x.pow(2).mean(-1, /*keepdim=*/true) + 1e-6);
  EXPECT_TRUE(torch::allclose(RmsNorm(x, w, 1e-6, Kernels::kFused), want, 1e-5, 1e-6));
  torch::Tensor g = torch::randn({4, 6});
  torch::Tensor u = torch::randn({4, 6});
  EXPECT_TRUE(
      torch::allclose(SiluMul(g, u, Kernels::kFused), g * torch::sigmoid(g) * u, 1e-5, 1e-6));
}

// Fused (CUDA kernels) against reference (LibTorch ops) on the same device: outputs and the
// gradients of a random linear functional, in fp32 and bf16, on odd sizes that exercise the
// kernels' tails and unaligned rows.
class FusedOnCudaTest : public ::testing::TestWithParam<torch::Dtype> {};

void ExpectClose(const torch::Tensor& got, const torch::Tensor& want, torch::Dtype dtype,
                 const char* what) {
  // bf16: the reference rounds after each op, the kernels once.
  const double rtol = dtype == torch::kBFloat16 ? 2e-2 : 1e-5;
  const double atol = dtype == torch::kBFloat16 ? 2e-2 : 1e-5;
  EXPECT_TRUE(torch::allclose(got.to(torch::kFloat32), want.to(torch::kFloat32), rtol, atol))
      << what << ": max abs diff "
      << (got.to(torch::kFloat32) - want.to(torch::kFloat32)).abs().max().item<double>();
}

TEST_P(FusedOnCudaTest, MatchesReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this machine";
  ASSERT_TRUE(FusedKernelsBuilt()) << "a CUDA device, but this build has no fused kernels";
  const torch::Dtype dtype = GetParam();
  const auto on = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
  torch::manual_seed(4);

  auto run = [](auto&& fn, std::vector<torch::Tensor> inputs, const torch::Tensor& probe) {
    for (torch::Tensor& t : inputs) t = t.detach().clone().set_requires_grad(true);
    torch::Tensor out = fn(inputs);
    out.backward(probe);
    std::vector<torch::Tensor> result = {out.detach()};
    for (torch::Tensor& t : inputs) result.push_back(t.grad());
    return result;
  };

  {  // SiluMul, 1000 x 37 (not a multiple of the 8-element vector).
    torch::Tensor g = torch::randn({1000, 37}, on) * 3, u = torch::randn({1000, 37}, on);
    torch::Tensor probe = torch::randn({1000, 37}, on);
    auto fused =
        run([](auto& in) { return SiluMul(in[0], in[1], Kernels::kFused); }, {g, u}, probe);
    auto ref =
        run([](auto& in) { return SiluMul(in[0], in[1], Kernels::kReference); }, {g, u}, probe);
    for (int i = 0; i < 3; ++i) ExpectClose(fused[i], ref[i], dtype, "SiluMul");
  }
  {  // RoPE, 3 x 33 positions x 5 heads x 64.
    auto [cos, sin] = Angles(33, 32);
    cos = cos.cuda();
    sin = sin.cuda();
    torch::Tensor x = torch::randn({3, 33, 5, 64}, on);
    torch::Tensor probe = torch::randn({3, 33, 5, 64}, on);
    auto fused =
        run([&](auto& in) { return ApplyRope(in[0], cos, sin, Kernels::kFused); }, {x}, probe);
    auto ref =
        run([&](auto& in) { return ApplyRope(in[0], cos, sin, Kernels::kReference); }, {x}, probe);
    for (int i = 0; i < 2; ++i) ExpectClose(fused[i], ref[i], dtype, "ApplyRope");
    // A non-contiguous input (a transposed view) gives the same result.
    torch::Tensor t = x.transpose(1, 2).contiguous().transpose(1, 2);
    ExpectClose(ApplyRope(t, cos, sin, Kernels::kFused), fused[0], dtype,
                "ApplyRope, strided input");
  }
  {  // RMSNorm, 300 x 2048 with a weight.
    torch::Tensor x = torch::randn({300, 2048}, on);
    torch::Tensor w = torch::rand({2048}, on) + 0.5;
    torch::Tensor probe = torch::randn({300, 2048}, on);
    auto fused =
        run([&](auto& in) { return RmsNorm(in[0], w, 1e-5, Kernels::kFused); }, {x}, probe);
    auto ref =
        run([&](auto& in) { return RmsNorm(in[0], w, 1e-5, Kernels::kReference); }, {x}, probe);
    for (int i = 0; i < 2; ++i) ExpectClose(fused[i], ref[i], dtype, "RmsNorm");
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, FusedOnCudaTest,
                         ::testing::Values(torch::kFloat32, torch::kBFloat16));

}  // namespace
}  // namespace attune::engine
