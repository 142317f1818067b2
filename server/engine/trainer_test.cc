// End-to-end tests of the training engine on the example task (real model, real data).
#include "server/engine/trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "nlohmann/json.hpp"
#include "server/engine/checkpoint.h"
#include "server/engine/optimizer.h"
#include "server/tools/example_assets.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;

// Records everything the engine reports; optionally asks to stop after a given step.
class RecordingObserver : public TrainingObserver {
 public:
  explicit RecordingObserver(int64_t stop_after = -1) : stop_after_(stop_after) {}
  void OnStart(const SpecCheck& setup, int64_t resumed_from_step) override {
    setup_ = setup;
    resumed_from_ = resumed_from_step;
  }
  void OnStep(const StepMetrics& m) override { steps.push_back(m); }
  void OnEval(const EvalMetrics& m) override { evals.push_back(m); }
  void OnCheckpoint(const CheckpointInfo& c) override { checkpoints.push_back(c); }
  void OnWarning(const std::string& w) override { warnings.push_back(w); }
  bool StopRequested() override {
    return stop_after_ >= 0 && !steps.empty() && steps.back().step >= stop_after_;
  }

  std::vector<StepMetrics> steps;
  std::vector<EvalMetrics> evals;
  std::vector<CheckpointInfo> checkpoints;
  std::vector<std::string> warnings;
  SpecCheck setup_;
  int64_t resumed_from_ = -1;

 private:
  int64_t stop_after_;
};

class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() /
                         ("attune_trainer_test_" + std::to_string(::getpid())));
    ASSERT_TRUE(WriteExampleAssets(root_->string(), nullptr).ok());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }

  // The example job: LoRA on q,v with the seed paper's v ratio.
  static TrainSpec ExampleSpec() {
    TrainSpec spec;
    spec.model_dir = (*root_ / "model").string();
    spec.task = Task::kSequenceClassification;
    spec.train_path = (*root_ / "train.jsonl").string();
    spec.validation_path = (*root_ / "validation.jsonl").string();
    spec.targets = {"q", "v"};
    spec.lora_rank = 8;
    spec.lora_alpha = 16;
    spec.learning_rate = 3e-3;
    spec.lr_ratios = {{"v", 4.0}};
    spec.epochs = 3;
    spec.batch_size = 32;
    spec.max_seq_len = 64;
    spec.warmup_steps = 10;
    spec.seed = 7;
    // Steps of batch_size examples, which these tests count; packing has its own tests
    // (packing_test, packed_model_test) and the resume tests below turn it back on.
    spec.packing = false;
    return spec;
  }

  static std::string OutputDir(const std::string& name) {
    fs::path dir = *root_ / "runs" / name;
    fs::remove_all(dir);
    return dir.string();
  }

  static fs::path* root_;
};

fs::path* TrainerTest::root_ = nullptr;

TEST_F(TrainerTest, ExampleJobLearnsTheTask) {
  RecordingObserver observer;
  RunOptions options;
  options.output_dir = OutputDir("example");
  auto result = RunTraining(ExampleSpec(), options, &observer);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome, Outcome::kCompleted);
  ASSERT_TRUE(result->final_eval.has_value());
  ASSERT_TRUE(result->final_eval->accuracy.has_value());
  EXPECT_GE(*result->final_eval->accuracy, 0.9);
  EXPECT_EQ(result->steps, 3 * ((2000 + 31) / 32));
  EXPECT_EQ(observer.steps.size(), static_cast<size_t>(result->steps));
  EXPECT_EQ(observer.evals.size(), 3u);  // one per epoch
  EXPECT_GT(result->trainable_parameters, 0);
  EXPECT_LT(result->trainable_parameters, result->total_parameters / 5);
  ASSERT_TRUE(result->final_checkpoint.has_value());
  EXPECT_TRUE(fs::exists(fs::path(result->final_checkpoint->dir) / "adapter_model.safetensors"));
  EXPECT_LT(observer.steps.back().train_loss, observer.steps.front().train_loss);
  // The final evaluation's predictions agree with its accuracy.
  std::ifstream predictions(fs::path(options.output_dir) / "eval_predictions.jsonl");
  std::ifstream validation(*root_ / "validation.jsonl");
  std::string prediction_line, validation_line;
  int lines = 0, correct = 0;
  while (std::getline(predictions, prediction_line) && std::getline(validation, validation_line)) {
    auto p = nlohmann::json::parse(prediction_line);
    auto v = nlohmann::json::parse(validation_line);
    EXPECT_EQ(p["index"], lines);
    correct += p["label"] == v["label"];
    ++lines;
  }
  EXPECT_EQ(lines, 300);
  EXPECT_DOUBLE_EQ(correct / 300.0, *result->final_eval->accuracy);
}

// At every step, each group's learning rate is lr x ratio x schedule.
TEST_F(TrainerTest, GroupLearningRatesFollowRatiosAndSchedule) {
  TrainSpec spec = ExampleSpec();
  spec.max_steps = 12;
  spec.loraplus_ratio = 2.0;
  spec.validation_path.clear();
  RecordingObserver observer;
  RunOptions options;
  options.output_dir = OutputDir("lr");
  ASSERT_TRUE(RunTraining(spec, options, &observer).ok());
  ASSERT_EQ(observer.steps.size(), 12u);
  for (const StepMetrics& m : observer.steps) {
    const double schedule = ScheduleMultiplier(spec.schedule, m.step - 1, spec.warmup_steps, 12);
    EXPECT_DOUBLE_EQ(m.learning_rates.at("q.lora_A"), 3e-3 * schedule);
    EXPECT_DOUBLE_EQ(m.learning_rates.at("q.lora_B"), 3e-3 * 2 * schedule);
    EXPECT_DOUBLE_EQ(m.learning_rates.at("v.lora_A"), 3e-3 * 4 * schedule);
    EXPECT_DOUBLE_EQ(m.learning_rates.at("v.lora_B"), 3e-3 * 4 * 2 * schedule);
    EXPECT_DOUBLE_EQ(m.learning_rates.at("head"), 3e-3 * schedule);
  }
}

TEST_F(TrainerTest, SameSeedSameLossesBitForBit) {
  TrainSpec spec = ExampleSpec();
  spec.packing = true;
  spec.max_steps = 15;
  spec.lora_dropout = 0.1;
  std::vector<double> losses[2];
  for (int run = 0; run < 2; ++run) {
    RecordingObserver observer;
    RunOptions options;
    options.output_dir = OutputDir("determinism" + std::to_string(run));
    ASSERT_TRUE(RunTraining(spec, options, &observer).ok());
    for (const auto& m : observer.steps) losses[run].push_back(m.train_loss);
  }
  ASSERT_EQ(losses[0].size(), 15u);
  EXPECT_EQ(losses[0], losses[1]);
}

// The speed switches change how a step runs, not what it computes: reading metrics back every 4
// steps instead of every step, and always passing a mask, give the same losses bit for bit, and
// every step is still reported once, in order. (CUDA graphs are CUDA only; on the CPU the option
// must change nothing.)
TEST_F(TrainerTest, SpeedOptionsKeepLossesBitForBit) {
  TrainSpec spec = ExampleSpec();
  spec.max_steps = 14;
  std::vector<double> losses[2];
  for (int run = 0; run < 2; ++run) {
    RecordingObserver observer;
    RunOptions options;
    options.output_dir = OutputDir("speed" + std::to_string(run));
    if (run == 1) {
      options.speed.metrics_every = 4;
      options.speed.unmasked_attention = false;
      options.speed.cuda_graphs = true;  // CUDA only: ignored here
    }
    ASSERT_TRUE(RunTraining(spec, options, &observer).ok());
    for (size_t i = 0; i < observer.steps.size(); ++i) {
      EXPECT_EQ(observer.steps[i].step, static_cast<int64_t>(i) + 1);
      EXPECT_EQ(observer.steps[i].samples, 32);
      EXPECT_GT(observer.steps[i].tokens, 32);
      EXPECT_GT(observer.steps[i].grad_norm, 0);
      losses[run].push_back(observer.steps[i].train_loss);
    }
  }
  ASSERT_EQ(losses[0].size(), 14u);
  EXPECT_EQ(losses[0], losses[1]);
}

// A job stopped part way and resumed from its checkpoint ends with the very same adapter bytes.
TEST_F(TrainerTest, ResumedRunIsBitIdenticalToUninterrupted) {
  TrainSpec spec = ExampleSpec();
  spec.packing = true;
  spec.max_steps = 30;
  spec.checkpoint_every = 10;
  spec.lora_dropout = 0.1;
  spec.validation_path.clear();

  RecordingObserver straight;
  RunOptions options;
  options.output_dir = OutputDir("straight");
  auto full = RunTraining(spec, options, &straight);
  ASSERT_TRUE(full.ok()) << full.status();

  RecordingObserver first(/*stop_after=*/17);
  RunOptions resumable;
  resumable.output_dir = OutputDir("resumed");
  auto stopped = RunTraining(spec, resumable, &first);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->outcome, Outcome::kStopped);
  EXPECT_EQ(ListCheckpointSteps(resumable.output_dir)->back(), 17);

  RecordingObserver second;
  auto resumed = RunTraining(spec, resumable, &second);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(second.resumed_from_, 17);
  EXPECT_EQ(second.steps.front().step, 18);
  for (size_t i = 0; i < second.steps.size(); ++i) {
    EXPECT_EQ(second.steps[i].train_loss, straight.steps[17 + i].train_loss) << "step " << 18 + i;
  }
  EXPECT_EQ(resumed->final_checkpoint->sha256, full->final_checkpoint->sha256);
}

// A run resumed at its end (an attempt crashed after writing the last checkpoint, before it was
// reported) takes no step and writes nothing, and still reports the checkpoint it ends with:
// the scheduler records it if the crashed attempt did not (UnrecordedFinalCheckpoint).
TEST_F(TrainerTest, ARunResumedAtItsEndReportsItsLastCheckpoint) {
  TrainSpec spec = ExampleSpec();
  spec.max_steps = 6;
  spec.checkpoint_every = 4;
  spec.validation_path.clear();
  RunOptions options;
  options.output_dir = OutputDir("ended");
  RecordingObserver first;
  auto full = RunTraining(spec, options, &first);
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_TRUE(full->final_checkpoint.has_value());
  RecordingObserver again;
  auto resumed = RunTraining(spec, options, &again);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(again.resumed_from_, 6);
  EXPECT_TRUE(again.steps.empty());
  ASSERT_TRUE(resumed->final_checkpoint.has_value());
  EXPECT_EQ(resumed->final_checkpoint->step, 6);
  EXPECT_EQ(resumed->final_checkpoint->dir, full->final_checkpoint->dir);
  EXPECT_EQ(resumed->final_checkpoint->sha256, full->final_checkpoint->sha256);
  EXPECT_EQ(resumed->final_checkpoint->adapter_bytes, full->final_checkpoint->adapter_bytes);
}

// Targets too large for float32 make every loss infinite: each step is skipped and reported, and
// the job fails after several in a row, saying why.
TEST_F(TrainerTest, NonFiniteLossesSkipStepsThenFailTheJob) {
  TrainSpec spec = ExampleSpec();
  spec.task = Task::kRegression;
  spec.validation_path.clear();
  spec.train_path = (*root_ / "overflow.jsonl").string();
  {
    std::ofstream out(spec.train_path);
    for (int i = 0; i < 64; ++i) out << "{\"text\": \"the movie was fine\", \"label\": 1e39}\n";
  }
  RecordingObserver observer;
  RunOptions options;
  options.output_dir = OutputDir("nonfinite");
  auto result = RunTraining(spec, options, &observer);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(std::string(result.status().message()).find("not finite for 5 steps in a row"),
            std::string::npos)
      << result.status();
  ASSERT_EQ(observer.steps.size(), 4u);  // the fifth fails the job before it is reported
  for (const StepMetrics& m : observer.steps) EXPECT_TRUE(m.skipped);
  int non_finite_warnings = 0;
  for (const std::string& w : observer.warnings) {
    non_finite_warnings += w.find("is not finite; step skipped") != std::string::npos;
  }
  EXPECT_EQ(non_finite_warnings, 4);
}

// A checkpoints directory that cannot be listed (here a file in its place) fails the job with
// the reason, before the first step, instead of silently restarting it from step 0.
TEST_F(TrainerTest, UnreadableCheckpointsDirectoryFailsTheJob) {
  TrainSpec spec = ExampleSpec();
  spec.max_steps = 3;
  RunOptions options;
  options.output_dir = OutputDir("unreadable");
  fs::create_directories(options.output_dir);
  std::ofstream(fs::path(options.output_dir) / "checkpoints") << "not a directory";
  RecordingObserver observer;
  auto result = RunTraining(spec, options, &observer);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(result.status().message(),
            "checkpoints: cannot list " + options.output_dir + "/checkpoints: Not a directory");
  EXPECT_TRUE(observer.steps.empty());
  EXPECT_EQ(observer.resumed_from_, -1);  // OnStart never came
}

// StepMetrics::device_memory is CUDA's allocator figures: never set on the CPU.
TEST_F(TrainerTest, CpuStepsCarryNoDeviceMemory) {
  TrainSpec spec = ExampleSpec();
  spec.max_steps = 3;
  spec.validation_path.clear();
  RecordingObserver observer;
  RunOptions options;
  options.output_dir = OutputDir("cpu_memory");
  ASSERT_TRUE(RunTraining(spec, options, &observer).ok());
  ASSERT_EQ(observer.steps.size(), 3u);
  for (const StepMetrics& m : observer.steps) EXPECT_FALSE(m.device_memory.has_value());
}

TEST_F(TrainerTest, CheckSpecRejectsMissingTargetAndBadData) {
  TrainSpec spec = ExampleSpec();
  auto check = CheckSpec(spec);
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(check->architecture, "RobertaForSequenceClassification");
  EXPECT_EQ(check->num_labels, 2);
  EXPECT_EQ(check->train_examples, 2000);

  spec.targets = {"q", "gate"};
  check = CheckSpec(spec);
  EXPECT_EQ(check.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(check.status().message()).find("targets: projection 'gate'"),
            std::string::npos)
      << check.status();

  spec = ExampleSpec();
  spec.train_path = (*root_ / "broken.jsonl").string();
  std::ofstream(spec.train_path) << "{\"text\": \"fine\", \"label\": \"positive\"}\n{broken\n";
  check = CheckSpec(spec);
  EXPECT_EQ(check.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(check.status().message()),
            "train: " + spec.train_path + ":2: not valid JSON");
  RecordingObserver observer;
  auto run = RunTraining(spec, RunOptions{}, &observer);
  EXPECT_FALSE(run.ok());
  EXPECT_TRUE(observer.steps.empty());

  // A directory where a data file should be is the user's mistake, not the server's: it used to
  // read as an empty file and then fail hashing it as INTERNAL.
  spec = ExampleSpec();
  spec.validation_path = root_->string();
  check = CheckSpec(spec);
  EXPECT_EQ(check.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(check.status().message(),
            "validation: " + root_->string() + " is a directory; expected a JSONL file");
}

// CheckSpec fills what a queued job shows: the parameter counts (parameter_count_test checks
// them against the loaded model) and the weights' size.
TEST_F(TrainerTest, CheckSpecCountsParameters) {
  auto check = CheckSpec(ExampleSpec());
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_GT(check->trainable_parameters, 0);
  EXPECT_LT(check->trainable_parameters, check->total_parameters / 5);
  EXPECT_EQ(check->base_model_bytes,
            static_cast<int64_t>(fs::file_size(*root_ / "model" / "model.safetensors")));
  EXPECT_EQ(check->validation_examples, 300);
}

}  // namespace
}  // namespace attune::engine
