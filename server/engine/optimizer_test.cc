#include "server/engine/optimizer.h"

#include <gtest/gtest.h>

#include <limits>

namespace attune::engine {
namespace {

TrainableParam Param(const std::string& name, const std::string& projection, ParamRole role,
                     std::vector<int64_t> shape, bool no_decay = false) {
  TrainableParam p;
  p.name = name;
  p.projection = projection;
  p.role = role;
  p.no_decay = no_decay;
  p.tensor = torch::randn(shape).set_requires_grad(true);
  return p;
}

std::vector<TrainableParam> SomeParams() {
  return {Param("q.A", "q", ParamRole::kLoraA, {4, 8}),
          Param("q.B", "q", ParamRole::kLoraB, {8, 4}),
          Param("v.A", "v", ParamRole::kLoraA, {4, 8}),
          Param("v.B", "v", ParamRole::kLoraB, {8, 4}),
          Param("head.w", "", ParamRole::kHead, {2, 8}),
          Param("head.b", "", ParamRole::kHead, {2}, /*no_decay=*/true)};
}

TEST(ParamGroupsTest, LearningRatesFollowTheTable) {
  TrainSpec spec;
  spec.learning_rate = 1e-3;
  spec.lr_ratios = {{"v", 4.0}};
  spec.loraplus_ratio = 16.0;
  spec.weight_decay = 0.1;
  std::vector<ParamGroup> groups = BuildParamGroups(SomeParams(), spec);
  std::map<std::string, const ParamGroup*> by_name;
  for (const ParamGroup& g : groups) by_name[g.name] = &g;
  ASSERT_EQ(groups.size(), 6u);
  EXPECT_DOUBLE_EQ(by_name.at("q.lora_A")->base_lr, 1e-3);
  EXPECT_DOUBLE_EQ(by_name.at("q.lora_B")->base_lr, 1e-3 * 16);
  EXPECT_DOUBLE_EQ(by_name.at("v.lora_A")->base_lr, 4e-3);
  EXPECT_DOUBLE_EQ(by_name.at("v.lora_B")->base_lr, 4e-3 * 16);
  EXPECT_DOUBLE_EQ(by_name.at("head")->base_lr, 1e-3);
  EXPECT_DOUBLE_EQ(by_name.at("head")->weight_decay, 0.1);
  EXPECT_DOUBLE_EQ(by_name.at("head.no_decay")->weight_decay, 0.0);
}

// DoRA's magnitudes get their projection's ratio, as A does, and never LoRA+'s ratio (B's); they
// are decayed like A and B (optimizer.cc says why).
TEST(ParamGroupsTest, DoraMagnitudeTrainsAtItsProjectionsRateWithoutLoraPlus) {
  TrainSpec spec;
  spec.learning_rate = 1e-3;
  spec.lr_ratios = {{"v", 4.0}};
  spec.loraplus_ratio = 16.0;
  spec.weight_decay = 0.1;
  std::vector<TrainableParam> params = SomeParams();
  params.push_back(Param("q.m", "q", ParamRole::kDoraMagnitude, {8}));
  params.push_back(Param("v.m", "v", ParamRole::kDoraMagnitude, {8}));
  std::vector<ParamGroup> groups = BuildParamGroups(params, spec);
  std::map<std::string, const ParamGroup*> by_name;
  for (const ParamGroup& g : groups) by_name[g.name] = &g;
  ASSERT_EQ(groups.size(), 8u);
  EXPECT_DOUBLE_EQ(by_name.at("q.lora_magnitude")->base_lr, 1e-3);
  EXPECT_DOUBLE_EQ(by_name.at("v.lora_magnitude")->base_lr, 4e-3);
  EXPECT_DOUBLE_EQ(by_name.at("v.lora_magnitude")->weight_decay, 0.1);
  EXPECT_EQ(by_name.at("v.lora_magnitude")->param_names, std::vector<std::string>{"v.m"});
}

TEST(ScheduleTest, WarmupThenLinearCosineConstant) {
  EXPECT_DOUBLE_EQ(ScheduleMultiplier(Schedule::kLinear, 0, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(ScheduleMultiplier(Schedule::kLinear, 5, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(ScheduleMultiplier(Schedule::kLinear, 10, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(ScheduleMultiplier(Schedule::kLinear, 60, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(ScheduleMultiplier(Schedule::kLinear, 110, 10, 110), 0.0);
  EXPECT_NEAR(ScheduleMultiplier(Schedule::kCosine, 60, 10, 110), 0.5, 1e-12);
  EXPECT_NEAR(ScheduleMultiplier(Schedule::kCosine, 35, 10, 110), 0.5 * (1 + std::cos(M_PI / 4)),
              1e-12);
  EXPECT_DOUBLE_EQ(ScheduleMultiplier(Schedule::kConstant, 100, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(ScheduleMultiplier(Schedule::kConstant, 3, 0, 110), 1.0);
}

// Our AdamW must take exactly LibTorch's AdamW steps for the same group settings.
TEST(AdamWTest, MatchesLibTorchAdamW) {
  torch::manual_seed(0);
  TrainSpec spec;
  spec.learning_rate = 1e-2;
  spec.lr_ratios = {{"v", 4.0}};
  spec.weight_decay = 0.05;
  std::vector<TrainableParam> ours = SomeParams();
  std::vector<torch::Tensor> theirs;
  for (const auto& p : ours) theirs.push_back(p.tensor.detach().clone().set_requires_grad(true));

  std::vector<ParamGroup> groups = BuildParamGroups(ours, spec);
  AdamW optimizer(groups);
  std::vector<torch::optim::OptimizerParamGroup> reference_groups;
  size_t next = 0;
  for (const ParamGroup& g : groups) {
    std::vector<torch::Tensor> params(theirs.begin() + next,
                                      theirs.begin() + next + g.params.size());
    next += g.params.size();
    reference_groups.emplace_back(
        params, std::make_unique<torch::optim::AdamWOptions>(
                    torch::optim::AdamWOptions(g.base_lr).weight_decay(g.weight_decay)));
  }
  torch::optim::AdamW reference(reference_groups, torch::optim::AdamWOptions(1.0));
  for (int step = 0; step < 5; ++step) {
    for (size_t i = 0; i < ours.size(); ++i) {
      auto grad = torch::randn(ours[i].tensor.sizes());
      ours[i].tensor.mutable_grad() = grad.clone();
      theirs[i].mutable_grad() = grad.clone();
    }
    optimizer.Step(1.0);
    reference.step();
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_TRUE(torch::allclose(ours[i].tensor, theirs[i], 1e-6, 1e-7)) << ours[i].name;
  }
}

// A step whose `apply` flag is false (a non-finite loss, found on the device) changes nothing:
// not the parameters, not the moments, not the step count. Clipping scales to max_norm.
TEST(AdamWTest, SkippedStepChangesNothingAndClippingScalesToMaxNorm) {
  torch::manual_seed(2);
  TrainSpec spec;
  spec.learning_rate = 1e-2;
  std::vector<TrainableParam> params = SomeParams();
  AdamW optimizer(BuildParamGroups(params, spec));
  for (auto& p : params) p.tensor.mutable_grad() = torch::full(p.tensor.sizes(), 2.0);
  torch::Tensor norm = optimizer.GradNorm();
  int64_t elements = 0;
  for (const auto& p : params) elements += p.tensor.numel();
  EXPECT_NEAR(norm.item<double>(), 2.0 * std::sqrt(static_cast<double>(elements)), 1e-4);
  optimizer.ClipGradients(norm, 1.0);
  EXPECT_NEAR(optimizer.GradNorm().item<double>(), 1.0, 1e-5);
  optimizer.Step(1.0, torch::tensor(true));
  ASSERT_EQ(optimizer.step_count(), 1);
  std::vector<torch::Tensor> before;
  for (const auto& p : params) before.push_back(p.tensor.detach().clone());
  auto state_before = optimizer.StateTensors();

  for (auto& p : params) p.tensor.mutable_grad() = torch::full(p.tensor.sizes(), NAN);
  optimizer.Step(1.0, torch::isfinite(optimizer.GradNorm()));
  EXPECT_EQ(optimizer.step_count(), 1);
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[i].tensor, before[i])) << params[i].name;
  }
  for (const auto& [name, tensor] : optimizer.StateTensors()) {
    EXPECT_TRUE(torch::equal(tensor, state_before.at(name))) << name;
  }
  // ZeroGrad leaves zero gradients in place.
  optimizer.ZeroGrad();
  for (const auto& p : params) EXPECT_EQ(p.tensor.grad().abs().sum().item<double>(), 0.0);
}

// A threshold beyond fp32's range (max_grad_norm 1e308 passes validation) never clips, and does
// not fail the step with "value cannot be converted to type float without overflow".
TEST(AdamWTest, ClippingThresholdBeyondFloatRangeLeavesGradientsAlone) {
  TrainSpec spec;
  std::vector<TrainableParam> params = SomeParams();
  AdamW optimizer(BuildParamGroups(params, spec));
  for (auto& p : params) p.tensor.mutable_grad() = torch::full(p.tensor.sizes(), 2.0);
  const double norm = optimizer.GradNorm().item<double>();
  for (double max_norm : {1e308, std::numeric_limits<double>::max()}) {
    optimizer.ClipGradients(optimizer.GradNorm(), max_norm);
    EXPECT_NEAR(optimizer.GradNorm().item<double>(), norm, 1e-4) << max_norm;
  }
}

TEST(AdamWTest, StateRoundTripContinuesIdentically) {
  torch::manual_seed(1);
  TrainSpec spec;
  std::vector<TrainableParam> a = SomeParams();
  std::vector<TrainableParam> b;
  for (const auto& p : a) {
    TrainableParam copy = p;
    copy.tensor = p.tensor.detach().clone().set_requires_grad(true);
    b.push_back(copy);
  }
  AdamW first(BuildParamGroups(a, spec));
  for (auto& p : a) p.tensor.mutable_grad() = torch::ones(p.tensor.sizes());
  first.Step(1.0);
  AdamW second(BuildParamGroups(b, spec));
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < a.size(); ++i) b[i].tensor.copy_(a[i].tensor);
  }
  ASSERT_TRUE(second.LoadState(first.StateTensors(), first.step_count()).ok());
  for (size_t i = 0; i < a.size(); ++i) {
    auto g = torch::full(a[i].tensor.sizes(), 0.5);
    a[i].tensor.mutable_grad() = g.clone();
    b[i].tensor.mutable_grad() = g.clone();
  }
  first.Step(0.7);
  second.Step(0.7);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].tensor, b[i].tensor));

  auto state = first.StateTensors();
  state.erase(state.begin());
  EXPECT_EQ(second.LoadState(state, 1).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace attune::engine
