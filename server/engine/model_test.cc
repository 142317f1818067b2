// LoadModel against the parity fixtures made with Hugging Face transformers
// (tests/fixtures/parity/make_parity.py), and the errors and names the trainer relies on.
#include "server/engine/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "server/engine/hf_config.h"
#include "server/engine/llama.h"
#include "server/engine/safetensors.h"
#include "server/engine/safetensors_torch.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const char kFixtures[] = "tests/fixtures/parity";

std::string Fixture(const std::string& name) { return std::string(kFixtures) + "/" + name; }

struct Golden {
  torch::Tensor input_ids, attention_mask, logits;
};

Golden ReadGolden(const std::string& name) {
  auto file = SafetensorsFile::Open(Fixture(name) + "/golden.safetensors");
  EXPECT_TRUE(file.ok()) << file.status();
  auto get = [&](const char* key) {
    return TensorFromView(*(*file)->Find(key), TorchDtype((*file)->Find(key)->dtype), torch::kCPU);
  };
  return {get("input_ids"), get("attention_mask"), get("logits")};
}

ModelOptions OptionsFor(Task task, int num_labels, std::vector<std::string> targets = {}) {
  ModelOptions o;
  o.task = task;
  o.num_labels = num_labels;
  o.targets = std::move(targets);
  o.lora_rank = 4;
  o.lora_alpha = 8;
  return o;
}

// max |got - want| relative to max |want|.
double RelativeError(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).abs().max().item<double>() / want.abs().max().item<double>();
}

struct ParityCase {
  const char* name;
  Task task;
  int num_labels;
};

class ParityTest : public ::testing::TestWithParam<ParityCase> {};

TEST_P(ParityTest, LogitsMatchTransformers) {
  const ParityCase& c = GetParam();
  Golden g = ReadGolden(c.name);
  for (const auto& targets : {std::vector<std::string>{}, std::vector<std::string>{"q", "v"}}) {
    auto model = LoadModel(Fixture(c.name), OptionsFor(c.task, c.num_labels, targets));
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_TRUE((*model)->warnings().empty());
    torch::NoGradGuard no_grad;
    torch::Tensor logits = (*model)->Forward(g.input_ids, g.attention_mask);
    ASSERT_EQ(logits.sizes(), g.logits.sizes());
    EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
    // LoRA starts with B = 0, so the adapted model equals the base model.
    const double err = RelativeError(logits, g.logits);
    RecordProperty(targets.empty() ? "relative_error" : "relative_error_lora",
                   (std::ostringstream() << std::scientific << err).str());
    EXPECT_LT(err, 1e-4) << c.name << "\n" << logits << g.logits;
  }
}

// No mask (the trainer's batches without padding) is the same function as a mask of all ones:
// the attention is then causal (decoders) or unmasked (encoders) without an explicit mask.
TEST_P(ParityTest, NoMaskEqualsAllOnesMask) {
  const ParityCase& c = GetParam();
  Golden g = ReadGolden(c.name);
  auto model = LoadModel(Fixture(c.name), OptionsFor(c.task, c.num_labels, {"q", "v"}));
  ASSERT_TRUE(model.ok()) << model.status();
  torch::NoGradGuard no_grad;
  torch::Tensor with_mask = (*model)->Forward(g.input_ids, torch::ones_like(g.attention_mask));
  torch::Tensor without = (*model)->Forward(g.input_ids, torch::Tensor());
  ASSERT_EQ(without.sizes(), with_mask.sizes());
  EXPECT_LT(RelativeError(without, with_mask), 1e-6) << c.name;
}

// The decoders' chunked causal-LM loss equals cross-entropy on Forward's full logits, and so do
// its gradients on the adapters.
TEST(ModelTest, ChunkedCausalLmLossEqualsLossOnFullLogits) {
  Golden g = ReadGolden("llama_causal");
  auto model = LoadModel(Fixture("llama_causal"), OptionsFor(Task::kCausalLm, 0, {"q", "v"}));
  ASSERT_TRUE(model.ok()) << model.status();
  torch::Tensor labels = g.input_ids.masked_fill(g.attention_mask.eq(0), -100);
  std::vector<TrainableParam> params = (*model)->TrainableParameters();
  {
    // Give B a value so that A gets a gradient too.
    torch::NoGradGuard no_grad;
    for (auto& p : params) {
      if (p.role == ParamRole::kLoraB) p.tensor.normal_(0, 0.02);
    }
  }
  torch::Tensor chunked = (*model)->CausalLmLoss(g.input_ids, g.attention_mask, labels);
  chunked.backward();
  std::vector<torch::Tensor> chunked_grads;
  for (auto& p : params) {
    chunked_grads.push_back(p.tensor.grad().clone());
    p.tensor.mutable_grad() = torch::Tensor();
  }
  torch::Tensor plain = (*model)->Model::CausalLmLoss(g.input_ids, g.attention_mask, labels);
  plain.backward();
  EXPECT_NEAR(chunked.item<double>(), plain.item<double>(), 1e-5);
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::allclose(chunked_grads[i], params[i].tensor.grad(), 1e-4, 1e-6))
        << params[i].name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, ParityTest,
    ::testing::Values(ParityCase{"roberta_cls", Task::kSequenceClassification, 3},
                      ParityCase{"bert_regression", Task::kRegression, 1},
                      ParityCase{"llama_causal", Task::kCausalLm, 0},
                      ParityCase{"qwen2_causal", Task::kCausalLm, 0},
                      ParityCase{"mistral_causal", Task::kCausalLm, 0},
                      ParityCase{"llama_cls", Task::kSequenceClassification, 2}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(RopeTest, InverseFrequenciesMatchTransformers) {
  // Printed by make_parity.py from transformers' rotary embedding modules.
  auto llama = LoadHfConfig(Fixture("llama_causal"));
  ASSERT_TRUE(llama.ok()) << llama.status();
  EXPECT_EQ(llama->rope.type, "llama3");
  torch::Tensor f = RopeInverseFrequencies(llama->rope, llama->head_dim);
  torch::Tensor want = torch::tensor(
      {0.5760563611984253, 0.004700753837823868, 0.00017677668074611574, 6.647869668086059e-06},
      torch::kFloat32);
  EXPECT_TRUE(torch::allclose(f, want, 1e-6, 0)) << f;
  auto mistral = LoadHfConfig(Fixture("mistral_causal"));
  ASSERT_TRUE(mistral.ok());
  EXPECT_EQ(mistral->head_dim, 12);
  f = RopeInverseFrequencies(mistral->rope, mistral->head_dim);
  want = torch::tensor({0.5, 0.1077217236161232, 0.02320794202387333, 0.004999999888241291,
                        0.001077217166312039, 0.00023207947378978133},
                       torch::kFloat32);
  EXPECT_TRUE(torch::allclose(f, want, 1e-6, 0)) << f;
}

TEST(ModelTest, OnlyAdaptersAndHeadTrainAndGetGradients) {
  auto model =
      LoadModel(Fixture("roberta_cls"), OptionsFor(Task::kSequenceClassification, 3, {"q", "v"}));
  ASSERT_TRUE(model.ok()) << model.status();
  Golden g = ReadGolden("roberta_cls");
  std::vector<TrainableParam> params = (*model)->TrainableParameters();
  // 2 layers x (q, v) x (A, B), then classifier.dense and out_proj (weight, bias).
  ASSERT_EQ(params.size(), 12u);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : params) {
      if (p.role == ParamRole::kLoraB) p.tensor.fill_(0.01);
    }
  }
  (*model)->SetTraining(true);
  (*model)->Forward(g.input_ids, g.attention_mask).pow(2).sum().backward();
  int64_t trainable = 0;
  for (const auto& p : params) {
    EXPECT_TRUE(p.tensor.requires_grad()) << p.name;
    ASSERT_TRUE(p.tensor.grad().defined()) << p.name;
    EXPECT_GT(p.tensor.grad().abs().sum().item<double>(), 0) << p.name;
    EXPECT_EQ(p.tensor.scalar_type(), torch::kFloat32) << p.name;
    trainable += p.tensor.numel();
  }
  // r=4, hidden 32: each LoRA pair 4*32 + 32*4; head 32*32 + 32 + 3*32 + 3.
  EXPECT_EQ(trainable, 4 * 256 + 1024 + 32 + 96 + 3);
  // The base model's 22k frozen elements are counted but not trainable.
  EXPECT_GT((*model)->TotalParameters(), trainable + 20000);
}

TEST(ModelTest, TensorNamesAndShapesMatchWhatPeftSaves) {
  // From tests/fixtures/parity/peft_reference.txt (PEFT 0.21.0, r=4, targets query,value).
  auto model =
      LoadModel(Fixture("roberta_cls"), OptionsFor(Task::kSequenceClassification, 3, {"q", "v"}));
  ASSERT_TRUE(model.ok()) << model.status();
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& p : (*model)->TrainableParameters()) {
    got[p.name] = p.tensor.sizes().vec();
  }
  std::map<std::string, std::vector<int64_t>> want = {
      {"base_model.model.classifier.dense.bias", {32}},
      {"base_model.model.classifier.dense.weight", {32, 32}},
      {"base_model.model.classifier.out_proj.bias", {3}},
      {"base_model.model.classifier.out_proj.weight", {3, 32}},
  };
  for (int layer : {0, 1}) {
    for (const char* m : {"query", "value"}) {
      std::string prefix = "base_model.model.roberta.encoder.layer." + std::to_string(layer) +
                           ".attention.self." + m;
      want[prefix + ".lora_A.weight"] = {4, 32};
      want[prefix + ".lora_B.weight"] = {32, 4};
    }
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ((*model)->TargetModuleNames(), (std::vector<std::string>{"query", "value"}));
  EXPECT_EQ((*model)->PeftTaskType(), "SEQ_CLS");
  EXPECT_EQ((*model)->ModulesToSave(), (std::vector<std::string>{"classifier", "score"}));

  auto llama =
      LoadModel(Fixture("llama_cls"), OptionsFor(Task::kSequenceClassification, 2, {"q", "v"}));
  ASSERT_TRUE(llama.ok()) << llama.status();
  std::vector<TrainableParam> params = (*llama)->TrainableParameters();
  ASSERT_EQ(params.size(), 9u);
  EXPECT_EQ(params[3].name, "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight");
  EXPECT_EQ(params[3].tensor.sizes().vec(), (std::vector<int64_t>{16, 4}));  // GQA: 2 kv heads
  EXPECT_EQ(params[8].name, "base_model.model.score.weight");
  EXPECT_EQ((*llama)->TargetModuleNames(), (std::vector<std::string>{"q_proj", "v_proj"}));

  auto causal = LoadModel(Fixture("llama_causal"), OptionsFor(Task::kCausalLm, 0, {"q", "v"}));
  ASSERT_TRUE(causal.ok());
  EXPECT_EQ((*causal)->PeftTaskType(), "CAUSAL_LM");
  EXPECT_TRUE((*causal)->ModulesToSave().empty());
  EXPECT_EQ((*causal)->TrainableParameters().size(), 8u);  // no head trains
}

TEST(ModelTest, FullMethodTrainsTheProjectionsUnderTheirOwnNames) {
  ModelOptions o = OptionsFor(Task::kSequenceClassification, 3, {"q", "v"});
  o.method = Method::kFull;
  auto model = LoadModel(Fixture("roberta_cls"), o);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<TrainableParam> params = (*model)->TrainableParameters();
  ASSERT_EQ(params.size(), 12u);
  EXPECT_EQ(params[0].name, "roberta.encoder.layer.0.attention.self.query.weight");
  EXPECT_EQ(params[0].role, ParamRole::kFull);
  EXPECT_EQ(params[1].name, "roberta.encoder.layer.0.attention.self.query.bias");
  EXPECT_TRUE(params[1].no_decay);
  EXPECT_EQ(params[8].name, "classifier.dense.weight");
  EXPECT_EQ(params[8].role, ParamRole::kHead);
  auto stored = SafetensorsFile::Open(Fixture("roberta_cls") + "/model.safetensors");
  ASSERT_TRUE(stored.ok());
  torch::Tensor q = TensorFromView(*(*stored)->Find(params[0].name), torch::kFloat32, torch::kCPU);
  EXPECT_TRUE(torch::equal(params[0].tensor.detach(), q));
}

TEST(ModelTest, TargetTheArchitectureLacksIsInvalidArgument) {
  auto model = LoadModel(Fixture("roberta_cls"),
                         OptionsFor(Task::kSequenceClassification, 3, {"q", "gate"}));
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(),
              HasSubstr("targets: 'gate' does not exist in RobertaForSequenceClassification; it "
                        "has q,k,v,o,up,down"));
  auto llama = LoadModel(Fixture("llama_causal"), OptionsFor(Task::kCausalLm, 0, {"x"}));
  EXPECT_EQ(llama.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(llama.status().message(), HasSubstr("it has q,k,v,o,gate,up,down"));
  auto encoder_lm = LoadModel(Fixture("bert_regression"), OptionsFor(Task::kCausalLm, 0, {"q"}));
  EXPECT_EQ(encoder_lm.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(encoder_lm.status().message(), HasSubstr("causal-lm needs a decoder"));
}

TEST(ModelTest, DescribeModelListsSupportedTargets) {
  auto roberta = DescribeModel(Fixture("roberta_cls"));
  ASSERT_TRUE(roberta.ok()) << roberta.status();
  EXPECT_EQ(roberta->architecture, "RobertaForSequenceClassification");
  EXPECT_EQ(roberta->model_type, "roberta");
  EXPECT_EQ(roberta->supported_targets,
            (std::vector<std::string>{"q", "k", "v", "o", "up", "down"}));
  EXPECT_EQ(roberta->vocab_size, 100);
  auto qwen = DescribeModel(Fixture("qwen2_causal"));
  ASSERT_TRUE(qwen.ok());
  EXPECT_EQ(qwen->supported_targets.size(), 7u);
  auto missing = DescribeModel("/nonexistent/model");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("no config.json"));
}

// Copies a fixture, rewriting its weights through `edit` (name, tensor) -> keep?.
class RewrittenModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/attune_model_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes dir_/config.json from `fixture` and the weights that `keep` accepts, renamed by
  // `rename` and stored as `dtype`.
  void Rewrite(const std::string& fixture, const std::function<bool(const std::string&)>& keep,
               const std::function<std::string(const std::string&)>& rename, DType dtype) {
    fs::copy_file(Fixture(fixture) + "/config.json", dir_ + "/config.json");
    auto file = SafetensorsFile::Open(Fixture(fixture) + "/model.safetensors");
    ASSERT_TRUE(file.ok());
    std::vector<torch::Tensor> keep_alive;
    std::vector<TensorEntry> entries;
    for (const std::string& name : (*file)->Names()) {
      if (!keep(name)) continue;
      torch::Tensor t = TensorFromView(*(*file)->Find(name), TorchDtype(dtype), torch::kCPU);
      keep_alive.push_back(t);
      entries.push_back({rename(name), dtype, t.sizes().vec(), t.data_ptr(),
                         static_cast<size_t>(t.numel() * t.element_size())});
    }
    ASSERT_TRUE(WriteSafetensors(dir_ + "/model.safetensors", entries, {{"format", "pt"}}).ok());
  }

  std::string dir_;
};

TEST_F(RewrittenModelTest, MissingWeightIsInvalidArgumentNamingTheKey) {
  const std::string key = "roberta.encoder.layer.1.attention.self.value.weight";
  Rewrite(
      "roberta_cls", [&](const std::string& n) { return n != key; },
      [](const std::string& n) { return n; }, DType::kF32);
  auto model = LoadModel(dir_, OptionsFor(Task::kSequenceClassification, 3, {"q", "v"}));
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(), HasSubstr("weights lack tensor '" + key + "'"));
}

TEST_F(RewrittenModelTest, Bf16AndFp16WeightsConvertToTheFrozenDtype) {
  Golden g = ReadGolden("llama_causal");
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    Rewrite(
        "llama_causal", [](const std::string&) { return true; },
        [](const std::string& n) { return n; }, dtype);
    auto model = LoadModel(dir_, OptionsFor(Task::kCausalLm, 0, {"q", "v"}));
    ASSERT_TRUE(model.ok()) << model.status();
    torch::NoGradGuard no_grad;
    torch::Tensor logits = (*model)->Forward(g.input_ids, g.attention_mask);
    EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
    // Rounding the weights to 8 (bf16) or 11 (fp16) bits moves the logits by well under 5%.
    double err = RelativeError(logits, g.logits);
    EXPECT_LT(err, dtype == DType::kBF16 ? 5e-2 : 5e-3);
    EXPECT_GT(err, 0);
    fs::remove(dir_ + "/config.json");
  }
}

TEST_F(RewrittenModelTest, BaseModelWithoutHeadGetsASeededHeadAndAWarning) {
  // A RobertaModel checkpoint: no "roberta." prefix and no classifier.
  Rewrite(
      "roberta_cls", [](const std::string& n) { return n.rfind("classifier.", 0) != 0; },
      [](const std::string& n) { return n.substr(std::string("roberta.").size()); }, DType::kF32);
  Golden g = ReadGolden("roberta_cls");
  ModelOptions o = OptionsFor(Task::kSequenceClassification, 2, {"q", "v"});
  o.seed = 5;
  auto a = LoadModel(dir_, o);
  auto b = LoadModel(dir_, o);
  o.seed = 6;
  auto c = LoadModel(dir_, o);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ((*a)->warnings().size(), 2u);
  EXPECT_THAT((*a)->warnings()[0], HasSubstr("head 'classifier.dense' is not in the checkpoint"));
  EXPECT_THAT((*a)->warnings()[1], HasSubstr("classifier.out_proj"));
  torch::NoGradGuard no_grad;
  torch::Tensor la = (*a)->Forward(g.input_ids, g.attention_mask);
  EXPECT_EQ(la.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_TRUE(torch::equal(la, (*b)->Forward(g.input_ids, g.attention_mask)));
  EXPECT_FALSE(torch::equal(la, (*c)->Forward(g.input_ids, g.attention_mask)));
  // Bias zero, weight N(0, initializer_range = 0.1).
  std::vector<TrainableParam> params = (*a)->TrainableParameters();
  const TrainableParam& out_bias = params.back();
  EXPECT_EQ(out_bias.name, "base_model.model.classifier.out_proj.bias");
  EXPECT_EQ(out_bias.tensor.abs().sum().item<double>(), 0);
  double std = params[params.size() - 4].tensor.std().item<double>();
  EXPECT_NEAR(std, 0.1, 0.02);
}

TEST_F(RewrittenModelTest, HeadWithAnotherLabelCountIsReplaced) {
  auto model = LoadModel(Fixture("llama_cls"), OptionsFor(Task::kSequenceClassification, 5, {"q"}));
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ((*model)->warnings().size(), 1u);
  EXPECT_THAT(
      (*model)->warnings()[0],
      HasSubstr("head 'score' has shape [2, 32] in the checkpoint, the task needs [5, 32]"));
}

}  // namespace
}  // namespace attune::engine
