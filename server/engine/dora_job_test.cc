// DoRA jobs end to end on the example task (real model, real data, CPU): a DoRA job learns, its
// checkpoints hold PEFT's DoRA tensors and use_dora, its magnitudes train at their projection's
// rate, and a resumed DoRA run ends with the very adapter bytes of an uninterrupted one.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>

#include "nlohmann/json.hpp"
#include "server/engine/checkpoint.h"
#include "server/engine/optimizer.h"
#include "server/engine/safetensors.h"
#include "server/engine/trainer.h"
#include "server/tools/example_assets.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class Recorder : public TrainingObserver {
 public:
  explicit Recorder(int64_t stop_after = -1) : stop_after_(stop_after) {}
  void OnStart(const SpecCheck& setup, int64_t resumed_from_step) override {
    setup_ = setup;
    resumed_from_ = resumed_from_step;
  }
  void OnStep(const StepMetrics& m) override { steps.push_back(m); }
  void OnEval(const EvalMetrics& m) override { evals.push_back(m); }
  void OnCheckpoint(const CheckpointInfo& c) override { checkpoints.push_back(c); }
  void OnWarning(const std::string&) override {}
  bool StopRequested() override {
    return stop_after_ >= 0 && !steps.empty() && steps.back().step >= stop_after_;
  }

  std::vector<StepMetrics> steps;
  std::vector<EvalMetrics> evals;
  std::vector<CheckpointInfo> checkpoints;
  SpecCheck setup_;
  int64_t resumed_from_ = -1;

 private:
  int64_t stop_after_;
};

class DoraJobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() /
                         ("attune_dora_job_test_" + std::to_string(::getpid())));
    ASSERT_TRUE(WriteExampleAssets(root_->string(), nullptr).ok());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }

  // The example job (trainer_test's) with DoRA on q, v.
  static TrainSpec DoraSpec() {
    TrainSpec spec;
    spec.model_dir = (*root_ / "model").string();
    spec.task = Task::kSequenceClassification;
    spec.train_path = (*root_ / "train.jsonl").string();
    spec.validation_path = (*root_ / "validation.jsonl").string();
    spec.targets = {"q", "v"};
    spec.method = Method::kDora;
    spec.lora_rank = 8;
    spec.lora_alpha = 16;
    spec.learning_rate = 3e-3;
    spec.lr_ratios = {{"v", 4.0}};
    spec.batch_size = 32;
    spec.max_seq_len = 64;
    spec.warmup_steps = 10;
    spec.seed = 7;
    spec.packing = false;  // trainer_test's step counts (steps of batch_size examples)
    return spec;
  }

  static std::string OutputDir(const std::string& name) {
    fs::path dir = *root_ / "runs" / name;
    fs::remove_all(dir);
    return dir.string();
  }

  static fs::path* root_;
};

fs::path* DoraJobTest::root_ = nullptr;

double MeanLoss(const std::vector<StepMetrics>& steps, size_t begin, size_t end) {
  double sum = 0;
  for (size_t i = begin; i < end; ++i) sum += steps[i].train_loss;
  return sum / static_cast<double>(end - begin);
}

// Two epochs of the example task with DoRA: the loss falls, the validation accuracy is well above
// chance (two balanced classes), and the checkpoint is PEFT's DoRA adapter: a magnitude [128] for
// q and v of each of the 4 layers, beside A and B, use_dora true, method "dora" in attune.json.
TEST_F(DoraJobTest, DoraJobLearnsAndWritesPeftsDoraAdapter) {
  TrainSpec spec = DoraSpec();
  spec.epochs = 2;
  spec.loraplus_ratio = 2.0;
  Recorder observer;
  RunOptions options;
  options.output_dir = OutputDir("learns");
  auto result = RunTraining(spec, options, &observer);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome, Outcome::kCompleted);
  ASSERT_EQ(observer.steps.size(), 2 * 63u);
  EXPECT_LT(MeanLoss(observer.steps, 116, 126), 0.8 * MeanLoss(observer.steps, 0, 10));
  ASSERT_TRUE(result->final_eval.has_value() && result->final_eval->accuracy.has_value());
  EXPECT_GE(*result->final_eval->accuracy, 0.8);
  for (const StepMetrics& m : observer.steps) {
    const double schedule = ScheduleMultiplier(spec.schedule, m.step - 1, spec.warmup_steps, 126);
    EXPECT_DOUBLE_EQ(m.learning_rates.at("q.lora_magnitude"), 3e-3 * schedule);
    EXPECT_DOUBLE_EQ(m.learning_rates.at("v.lora_magnitude"), 3e-3 * 4 * schedule);
    EXPECT_DOUBLE_EQ(m.learning_rates.at("v.lora_B"), 3e-3 * 4 * 2 * schedule);
  }

  ASSERT_TRUE(result->final_checkpoint.has_value());
  const std::string dir = result->final_checkpoint->dir;
  auto adapter = SafetensorsFile::Open(dir + "/adapter_model.safetensors");
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  int magnitudes = 0;
  for (const std::string& name : (*adapter)->Names()) {
    if (name.size() < 22 || name.substr(name.size() - 22) != ".lora_magnitude_vector") continue;
    ++magnitudes;
    EXPECT_EQ((*adapter)->Find(name)->shape, std::vector<int64_t>{128}) << name;
    EXPECT_EQ((*adapter)->Find(name)->dtype, DType::kF32) << name;
  }
  EXPECT_EQ(magnitudes, 8);
  for (int layer = 0; layer < 4; ++layer) {
    for (const char* proj : {"query", "value"}) {
      const std::string prefix = "base_model.model.roberta.encoder.layer." + std::to_string(layer) +
                                 ".attention.self." + proj;
      EXPECT_NE((*adapter)->Find(prefix + ".lora_magnitude_vector"), nullptr) << prefix;
      EXPECT_NE((*adapter)->Find(prefix + ".lora_A.weight"), nullptr) << prefix;
    }
  }
  const json config = json::parse(std::ifstream(dir + "/adapter_config.json"));
  EXPECT_EQ(config.at("use_dora"), true);
  EXPECT_EQ(config.at("r"), 8);
  const json record = json::parse(std::ifstream(dir + "/attune.json"));
  EXPECT_EQ(record.at("method"), "dora");
  // The trainable parameters are exactly the adapter's tensors, magnitudes included.
  int64_t elements = 0;
  for (const std::string& name : (*adapter)->Names()) {
    const std::vector<int64_t>& shape = (*adapter)->Find(name)->shape;
    elements += std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
  }
  EXPECT_EQ(result->trainable_parameters, elements);
  EXPECT_EQ(observer.setup_.trainable_parameters, elements);
}

// A DoRA job stopped part way and resumed from its checkpoint (magnitudes, their AdamW moments,
// the dropout generator) ends with the very same adapter bytes as an uninterrupted one.
TEST_F(DoraJobTest, ResumedDoraRunIsBitIdenticalToUninterrupted) {
  TrainSpec spec = DoraSpec();
  spec.max_steps = 30;
  spec.checkpoint_every = 10;
  spec.lora_dropout = 0.1;
  spec.validation_path.clear();

  Recorder straight;
  RunOptions options;
  options.output_dir = OutputDir("straight");
  auto full = RunTraining(spec, options, &straight);
  ASSERT_TRUE(full.ok()) << full.status();

  Recorder first(/*stop_after=*/17);
  RunOptions resumable;
  resumable.output_dir = OutputDir("resumed");
  auto stopped = RunTraining(spec, resumable, &first);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->outcome, Outcome::kStopped);

  Recorder second;
  auto resumed = RunTraining(spec, resumable, &second);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(second.resumed_from_, 17);
  ASSERT_EQ(second.steps.size(), 13u);
  for (size_t i = 0; i < second.steps.size(); ++i) {
    EXPECT_EQ(second.steps[i].train_loss, straight.steps[17 + i].train_loss) << "step " << 18 + i;
  }
  EXPECT_EQ(resumed->final_checkpoint->sha256, full->final_checkpoint->sha256);
}

}  // namespace
}  // namespace attune::engine
