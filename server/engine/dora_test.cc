// DoRA (lora.h, AdapterKind::kDora) against PEFT 0.21's own DoRA layer: the goldens in
// tests/golden/dora were made by tests/golden/dora/make_dora_goldens.py (torch 2.11, fp32, CPU)
// from PEFT's LoraConfig(use_dora=True, r=4, lora_alpha=8) with A, B (non-zero) and the
// magnitude set to seeded values. Outputs and gradients must agree to 1e-5 relative.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <set>
#include <string>

#include "nlohmann/json.hpp"
#include "server/engine/lora.h"
#include "server/engine/model.h"
#include "server/engine/tensor_file.h"

namespace attune::engine {
namespace {

const char kGoldens[] = "tests/golden/dora";
constexpr double kTolerance = 1e-5;
constexpr double kScale = 8.0 / 4;  // lora_alpha / r

using Tensors = std::map<std::string, torch::Tensor>;

Tensors ReadGoldens(const std::string& file) {
  auto tensors = ReadTensorsFile(std::string(kGoldens) + "/" + file);
  EXPECT_TRUE(tensors.ok()) << tensors.status();
  return tensors.ok() ? *tensors : Tensors();
}

// The golden `name` of `c`; fails the test (and returns an empty tensor) when it is missing.
torch::Tensor Get(const Tensors& t, const std::string& c, const std::string& name) {
  auto it = t.find(c + "." + name);
  EXPECT_NE(it, t.end()) << "golden lacks " << c << "." << name;
  return it == t.end() ? torch::Tensor() : it->second;
}

// max |got - want| relative to max |want|.
double RelativeError(const torch::Tensor& got, const torch::Tensor& want) {
  EXPECT_EQ(got.sizes(), want.sizes());
  return (got - want).abs().max().item<double>() / want.abs().max().item<double>();
}

LoraSettings GoldenSettings() {
  LoraSettings s;
  s.rank = 4;
  s.alpha = 8;
  return s;
}

// y = layer(x), then the backward of sum(y * grad_out); compares y and every gradient.
void ExpectForwardAndBackwardMatch(const Tensors& t, const std::string& c, const torch::Tensor& y,
                                   const torch::Tensor& x, const torch::Tensor& a,
                                   const torch::Tensor& b, const torch::Tensor& m) {
  (y * Get(t, c, "grad_out")).sum().backward();
  EXPECT_LT(RelativeError(y.detach(), Get(t, c, "output")), kTolerance) << c;
  EXPECT_LT(RelativeError(a.grad(), Get(t, c, "grad_lora_A")), kTolerance) << c;
  EXPECT_LT(RelativeError(b.grad(), Get(t, c, "grad_lora_B")), kTolerance) << c;
  EXPECT_LT(RelativeError(m.grad(), Get(t, c, "grad_magnitude")), kTolerance) << c;
  EXPECT_LT(RelativeError(x.grad(), Get(t, c, "grad_x")), kTolerance) << c;
}

// m starts at ||W||_row and B at zero, so the layer starts equal to the base layer; A is the same
// draw as LoRA's for the same seed.
TEST(DoraTest, StartsEqualToTheBaseLayerWithLorasA) {
  const Tensors t = ReadGoldens("dora_linear.safetensors");
  const torch::Tensor w = Get(t, "bias", "weight"), b = Get(t, "bias", "bias");
  torch::Generator g1 = at::detail::createCPUGenerator(5);
  torch::Generator g2 = at::detail::createCPUGenerator(5);
  AdaptedLinear dora(w, b, AdapterKind::kDora, GoldenSettings(), &g1);
  AdaptedLinear lora(w, b, AdapterKind::kLora, GoldenSettings(), &g2);
  EXPECT_TRUE(torch::equal(dora->lora_a(), lora->lora_a()));
  EXPECT_TRUE(torch::equal(dora->lora_b(), torch::zeros({12, 4})));
  EXPECT_TRUE(dora->magnitude().requires_grad());
  EXPECT_TRUE(torch::allclose(dora->magnitude(), w.norm(2, {1})));
  torch::NoGradGuard no_grad;
  const torch::Tensor x = Get(t, "bias", "x");
  EXPECT_TRUE(torch::allclose(dora->forward(x), torch::linear(x, w, b), 1e-5, 1e-6));
}

TEST(DoraTest, LinearLayerMatchesPeftWithAndWithoutBias) {
  const Tensors t = ReadGoldens("dora_linear.safetensors");
  for (const std::string c : {"bias", "nobias"}) {
    torch::Generator gen = at::detail::createCPUGenerator(1);
    torch::Tensor bias = c == "bias" ? Get(t, c, "bias") : torch::Tensor();
    AdaptedLinear layer(Get(t, c, "weight"), bias, AdapterKind::kDora, GoldenSettings(), &gen);
    layer->eval();
    // PEFT's initial magnitude: the row norms of W (B starts at zero).
    EXPECT_LT(RelativeError(layer->magnitude(), Get(t, c, "magnitude_init")), 1e-6) << c;
    {
      torch::NoGradGuard no_grad;
      layer->lora_a().copy_(Get(t, c, "lora_A"));
      layer->lora_b().copy_(Get(t, c, "lora_B"));
      layer->magnitude().copy_(Get(t, c, "magnitude"));
    }
    torch::Tensor x = Get(t, c, "x").clone().requires_grad_(true);
    torch::Tensor y = layer->forward(x);
    ExpectForwardAndBackwardMatch(t, c, y, x, layer->lora_a(), layer->lora_b(), layer->magnitude());
  }
}

// With lora_dropout in training, PEFT rescales the dropped input's base product, not the
// undropped one: the golden fixed PEFT's dropout mask, and DoraOutput gets the same dropped input.
TEST(DoraTest, DropoutFollowsPeftsFormula) {
  const Tensors t = ReadGoldens("dora_linear.safetensors");
  const std::string c = "dropout";
  torch::Tensor x = Get(t, c, "x").clone().requires_grad_(true);
  torch::Tensor a = Get(t, c, "lora_A").clone().requires_grad_(true);
  torch::Tensor b = Get(t, c, "lora_B").clone().requires_grad_(true);
  torch::Tensor m = Get(t, c, "magnitude").clone().requires_grad_(true);
  // x_dropped = x * mask / (1 - p): the same function of x as PEFT's dropout, for grad_x.
  const torch::Tensor keep = Get(t, c, "x_dropped").ne(0).to(torch::kFloat32) / (1 - 0.25);
  torch::Tensor y =
      DoraOutput(x, x * keep, Get(t, c, "weight"), Get(t, c, "bias"), a, b, m, kScale);
  ExpectForwardAndBackwardMatch(t, c, y, x, a, b, m);
}

TEST(DoraTest, DropoutIsOffInEvalMode) {
  const Tensors t = ReadGoldens("dora_linear.safetensors");
  torch::Generator gen = at::detail::createCPUGenerator(1);
  LoraSettings s = GoldenSettings();
  s.dropout = 0.5;
  AdaptedLinear layer(Get(t, "bias", "weight"), Get(t, "bias", "bias"), AdapterKind::kDora, s,
                      &gen);
  torch::NoGradGuard no_grad;
  layer->lora_b().copy_(Get(t, "bias", "lora_B"));
  layer->eval();
  const torch::Tensor x = Get(t, "bias", "x");
  EXPECT_TRUE(torch::equal(layer->forward(x), layer->forward(x)));
  layer->train();
  EXPECT_FALSE(torch::equal(layer->forward(x), layer->forward(x)));
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct ModelCase {
  const char* name;
  int num_labels;
};

class DoraModelTest : public ::testing::TestWithParam<ModelCase> {};

// attune's DoRA model, given the tensors PEFT saved (under exactly the names attune saves),
// predicts PEFT's logits.
TEST_P(DoraModelTest, PeftAdapterLoadsUnderAttunesNamesAndPredictsPeftsLogits) {
  const ModelCase& c = GetParam();
  ModelOptions o;
  o.task = Task::kSequenceClassification;
  o.num_labels = c.num_labels;
  o.targets = {"q", "v"};
  o.method = Method::kDora;
  o.lora_rank = 4;
  o.lora_alpha = 8;
  auto model = LoadModel(std::string("tests/fixtures/parity/") + c.name, o);
  ASSERT_TRUE(model.ok()) << model.status();
  const std::string dir = std::string(kGoldens) + "/peft_" + c.name;
  const Tensors adapter = ReadGoldens(std::string("peft_") + c.name + "/adapter_model.safetensors");
  std::set<std::string> names;
  int magnitudes = 0;
  torch::NoGradGuard no_grad;
  for (TrainableParam& p : (*model)->TrainableParameters()) {
    names.insert(p.name);
    auto it = adapter.find(p.name);
    ASSERT_NE(it, adapter.end()) << "PEFT saved no " << p.name;
    ASSERT_EQ(p.tensor.sizes(), it->second.sizes()) << p.name;
    p.tensor.copy_(it->second);
    if (p.role == ParamRole::kDoraMagnitude) ++magnitudes;
  }
  EXPECT_EQ(magnitudes, 4);  // q and v in 2 layers
  for (const auto& [key, tensor] : adapter) EXPECT_EQ(names.count(key), 1u) << key;
  const nlohmann::json config = nlohmann::json::parse(ReadText(dir + "/adapter_config.json"));
  EXPECT_EQ(config.at("use_dora"), true);
  const Tensors golden = ReadGoldens("dora_models.safetensors");
  (*model)->SetTraining(false);
  torch::Tensor logits =
      (*model)->Forward(Get(golden, c.name, "input_ids"), Get(golden, c.name, "attention_mask"));
  EXPECT_LT(RelativeError(logits, Get(golden, c.name, "logits")), kTolerance) << logits;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DoraModelTest,
                         ::testing::Values(ModelCase{"roberta_cls", 3}, ModelCase{"llama_cls", 2}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace attune::engine
