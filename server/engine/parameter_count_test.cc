// CheckSpec's parameter counts, read from config.json and the safetensors headers alone, equal
// what the loaded model has (RunTraining's OnStart), on the example model and on every parity
// fixture (tests/fixtures/parity: RoBERTa, BERT, Llama, Mistral, Qwen2 with tied embeddings),
// for LoRA with several target sets and ranks, for DoRA and for full fine-tuning.
#include "server/engine/parameter_count.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/engine/trainer.h"
#include "server/tools/example_assets.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Takes OnStart's figures and stops the job before its first step.
class StartObserver : public TrainingObserver {
 public:
  void OnStart(const SpecCheck& setup, int64_t) override { setup_ = setup; }
  void OnStep(const StepMetrics&) override {}
  void OnEval(const EvalMetrics&) override {}
  void OnCheckpoint(const CheckpointInfo&) override {}
  void OnWarning(const std::string&) override {}
  bool StopRequested() override { return true; }
  SpecCheck setup_;
};

// A word-level tokenizer over "w3".."w<vocab-1>" with <pad>=0, <s>=1, </s>=2.
std::string WordLevelTokenizer(int vocab) {
  json v = {{"<pad>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int id = 3; id < vocab; ++id) v["w" + std::to_string(id)] = id;
  return json{{"version", "1.0"},
              {"added_tokens", json::array()},
              {"pre_tokenizer", {{"type", "WhitespaceSplit"}}},
              {"model", {{"type", "WordLevel"}, {"vocab", v}, {"unk_token", "<pad>"}}}}
      .dump();
}

class ParameterCountTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() /
                         ("attune_parameter_count_test_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    ASSERT_TRUE(WriteExampleAssets((*root_ / "example").string(), nullptr).ok());
    std::ofstream(*root_ / "classes.jsonl") << "{\"text\": \"w5 w6\", \"label\": 0}\n"
                                               "{\"text\": \"w7\", \"label\": 1}\n"
                                               "{\"text\": \"w8 w9 w10\", \"label\": 2}\n";
    std::ofstream(*root_ / "values.jsonl") << "{\"text\": \"w5 w6\", \"label\": 0.5}\n"
                                              "{\"text\": \"w7\", \"label\": -1.5}\n";
    std::ofstream(*root_ / "lm.jsonl") << "{\"prompt\": \"w5 w6\", \"completion\": \"w7\"}\n"
                                          "{\"text\": \"w8 w9 w10\"}\n";
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }

  // A copy of the parity fixture `name` with a tokenizer of its vocabulary.
  static std::string Fixture(const std::string& name) {
    const fs::path model = *root_ / name;
    if (!fs::exists(model)) {
      fs::copy(fs::path("tests/fixtures/parity") / name, model, fs::copy_options::recursive);
      const json config = json::parse(std::ifstream(model / "config.json"));
      std::ofstream(model / "tokenizer.json") << WordLevelTokenizer(config["vocab_size"]);
    }
    return model.string();
  }

  // CheckSpec's counts for `spec` equal those of the model RunTraining builds.
  static void ExpectCountsOfTheLoadedModel(const TrainSpec& spec) {
    SCOPED_TRACE(spec.model_dir + " " + MethodName(spec.method) +
                 " r=" + std::to_string(spec.lora_rank) + " targets=" + json(spec.targets).dump());
    auto check = CheckSpec(spec);
    ASSERT_TRUE(check.ok()) << check.status();
    StartObserver observer;
    RunOptions options;
    options.output_dir = (*root_ / "out").string();
    options.resume = ResumeMode::kFresh;
    auto run = RunTraining(spec, options, &observer);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_GT(check->trainable_parameters, 0);
    EXPECT_LT(check->trainable_parameters, check->total_parameters);
    EXPECT_EQ(check->total_parameters, observer.setup_.total_parameters);
    EXPECT_EQ(check->trainable_parameters, observer.setup_.trainable_parameters);
    EXPECT_EQ(check->base_model_bytes, observer.setup_.base_model_bytes);
    EXPECT_EQ(check->num_labels, observer.setup_.num_labels);
    EXPECT_EQ(check->train_examples, observer.setup_.train_examples);
  }

  // LoRA on q,v (r 8), on every projection (r 4), on o,down (r 2), and full q,v.
  static void ExpectCountsForTargetSets(TrainSpec spec, const std::vector<std::string>& all) {
    for (const auto& [targets, rank] : std::vector<std::pair<std::vector<std::string>, int>>{
             {{"q", "v"}, 8}, {all, 4}, {{"down", "o"}, 2}}) {
      spec.method = Method::kLora;
      spec.targets = targets;
      spec.lora_rank = rank;
      ExpectCountsOfTheLoadedModel(spec);
    }
    spec.method = Method::kFull;
    spec.targets = {"q", "v"};
    ExpectCountsOfTheLoadedModel(spec);
    spec.method = Method::kDora;
    spec.lora_rank = 4;
    ExpectCountsOfTheLoadedModel(spec);
  }

  static TrainSpec Spec(const std::string& model_dir, Task task, const std::string& data) {
    TrainSpec spec;
    spec.model_dir = model_dir;
    spec.task = task;
    spec.train_path = (*root_ / data).string();
    spec.batch_size = 2;
    return spec;
  }

  static fs::path* root_;
};

fs::path* ParameterCountTest::root_ = nullptr;

const std::vector<std::string> kEncoderTargets = {"q", "k", "v", "o", "up", "down"};
const std::vector<std::string> kDecoderTargets = {"q", "k", "v", "o", "gate", "up", "down"};

TEST_F(ParameterCountTest, ExampleModel) {
  TrainSpec spec = Spec((*root_ / "example" / "model").string(), Task::kSequenceClassification,
                        "example/train.jsonl");
  spec.validation_path = (*root_ / "example" / "validation.jsonl").string();
  ExpectCountsForTargetSets(spec, kEncoderTargets);
}

// DoRA trains LoRA's A and B plus one magnitude per output row of each target: on the example
// model (4 layers, hidden 128) q and v add 4 x 2 x 128 elements, to the trainable and the total.
TEST_F(ParameterCountTest, DoraAddsOneMagnitudePerOutputRow) {
  TrainSpec spec = Spec((*root_ / "example" / "model").string(), Task::kSequenceClassification,
                        "example/train.jsonl");
  spec.targets = {"q", "v"};
  auto lora = CheckSpec(spec);
  spec.method = Method::kDora;
  auto dora = CheckSpec(spec);
  ASSERT_TRUE(lora.ok()) << lora.status();
  ASSERT_TRUE(dora.ok()) << dora.status();
  EXPECT_EQ(dora->trainable_parameters - lora->trainable_parameters, 4 * 2 * 128);
  EXPECT_EQ(dora->total_parameters - lora->total_parameters, 4 * 2 * 128);
}

TEST_F(ParameterCountTest, RobertaClassifier) {
  ExpectCountsForTargetSets(
      Spec(Fixture("roberta_cls"), Task::kSequenceClassification, "classes.jsonl"),
      kEncoderTargets);
}

TEST_F(ParameterCountTest, BertRegression) {
  ExpectCountsForTargetSets(Spec(Fixture("bert_regression"), Task::kRegression, "values.jsonl"),
                            kEncoderTargets);
}

TEST_F(ParameterCountTest, LlamaClassifier) {
  ExpectCountsForTargetSets(
      Spec(Fixture("llama_cls"), Task::kSequenceClassification, "classes.jsonl"), kDecoderTargets);
}

TEST_F(ParameterCountTest, DecoderCausalLms) {
  for (const char* fixture : {"llama_causal", "mistral_causal", "qwen2_causal"}) {
    ExpectCountsForTargetSets(Spec(Fixture(fixture), Task::kCausalLm, "lm.jsonl"), kDecoderTargets);
  }
}

// The example model, LoRA r 8 on q and v, by hand: 2 layers of hidden 64 (example_assets.cc),
// A [8, 64] + B [64, 8] per projection, plus the head (dense 64x64 + 64, out_proj 2x64 + 2).
TEST_F(ParameterCountTest, ExampleModelByHand) {
  TrainSpec spec = Spec((*root_ / "example" / "model").string(), Task::kSequenceClassification,
                        "example/train.jsonl");
  spec.targets = {"q", "v"};
  spec.lora_rank = 8;
  auto counts = CountParameters(spec, 2);
  ASSERT_TRUE(counts.ok()) << counts.status();
  const json config = json::parse(std::ifstream(*root_ / "example" / "model" / "config.json"));
  const int64_t h = config["hidden_size"];
  const int64_t layers = config["num_hidden_layers"];
  EXPECT_EQ(counts->trainable, layers * 2 * (8 * h + h * 8) + (h * h + h) + (2 * h + 2));
}

TEST_F(ParameterCountTest, MissingTensorIsInvalidArgument) {
  const std::string model = Fixture("llama_cls");
  TrainSpec spec = Spec(model, Task::kSequenceClassification, "classes.jsonl");
  spec.targets = {"q"};
  // config.json says one more layer than the weights hold.
  json config = json::parse(std::ifstream(fs::path(model) / "config.json"));
  const fs::path broken = *root_ / "llama_cls_deeper";
  fs::copy(model, broken, fs::copy_options::recursive);
  const int64_t layers = config["num_hidden_layers"];
  config["num_hidden_layers"] = layers + 1;
  std::ofstream(broken / "config.json") << config.dump();
  spec.model_dir = broken.string();
  auto counts = CountParameters(spec, 3);
  EXPECT_EQ(counts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(counts.status().message(), "model '" + broken.string() +
                                           "': weights lack tensor 'model.layers." +
                                           std::to_string(layers) + ".input_layernorm.weight'");
}

}  // namespace
}  // namespace attune::engine
