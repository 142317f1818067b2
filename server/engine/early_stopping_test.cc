// Early stopping: the rule on its own (EarlyStopping), and a real job on the example task whose
// metric stops improving, which must end early, completed, with its best checkpoint kept.
#include "server/engine/early_stopping.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "server/engine/trainer.h"
#include "server/tools/example_assets.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;

EvalMetrics Eval(int64_t step, double accuracy, double loss = 0.5) {
  EvalMetrics eval;
  eval.step = step;
  eval.accuracy = accuracy;
  eval.loss = loss;
  return eval;
}

TEST(EarlyStoppingTest, StopsAfterPatienceEvaluationsWithoutImprovement) {
  EarlyStopping stopping(2, EvalMetric::kAccuracy);
  EXPECT_FALSE(stopping.Observe(Eval(10, 0.60)));
  EXPECT_FALSE(stopping.Observe(Eval(20, 0.70)));  // better: the count starts again
  EXPECT_FALSE(stopping.Observe(Eval(30, 0.65)));  // 1 without improvement
  EXPECT_FALSE(stopping.Observe(Eval(40, 0.72)));  // better again
  EXPECT_FALSE(stopping.Observe(Eval(50, 0.72)));  // a tie is no improvement: 1
  EXPECT_EQ(stopping.reason(), "");
  EXPECT_TRUE(stopping.Observe(Eval(60, 0.71)));  // 2
  EXPECT_EQ(stopping.reason(),
            "stopped early at step 60: eval accuracy did not improve in 2 evaluations; the best "
            "is step 40 (0.72)");
}

TEST(EarlyStoppingTest, RanksByTheChosenMetricAndLowerLossIsBetter) {
  EarlyStopping by_loss(1, EvalMetric::kLoss);
  EXPECT_FALSE(by_loss.Observe(Eval(10, 0.9, /*loss=*/0.40)));
  EXPECT_FALSE(by_loss.Observe(Eval(20, 0.5, /*loss=*/0.30)));  // accuracy fell, loss improved
  EXPECT_TRUE(by_loss.Observe(Eval(30, 0.99, /*loss=*/0.35)));
  EXPECT_EQ(by_loss.reason(),
            "stopped early at step 30: eval loss did not improve in 1 evaluations; the best is "
            "step 20 (0.3)");
  EvalMetrics mcc = Eval(10, 0.5);
  mcc.mcc = 0.2;
  EarlyStopping by_mcc(1, EvalMetric::kMcc);
  EXPECT_FALSE(by_mcc.Observe(mcc));
  mcc.step = 20;
  mcc.accuracy = 0.9;  // better accuracy, same MCC: no improvement
  EXPECT_TRUE(by_mcc.Observe(mcc));
}

TEST(EarlyStoppingTest, ZeroPatienceNeverStops) {
  EarlyStopping off(0, EvalMetric::kAccuracy);
  for (int64_t step = 1; step <= 10; ++step) EXPECT_FALSE(off.Observe(Eval(step, 0.5)));
  EXPECT_EQ(off.reason(), "");
}

class Recorder : public TrainingObserver {
 public:
  void OnStep(const StepMetrics&) override {}
  void OnEval(const EvalMetrics& m) override { evals.push_back(m); }
  void OnCheckpoint(const CheckpointInfo& c) override { checkpoints.push_back(c); }
  void OnWarning(const std::string&) override {}
  bool StopRequested() override { return false; }
  std::vector<EvalMetrics> evals;
  std::vector<CheckpointInfo> checkpoints;
};

// A job whose accuracy cannot improve (a learning rate too small to move any prediction) stops
// after its first evaluation and `patience` more, completed, and keeps the first (best) one.
TEST(EarlyStoppingTest, AJobWhoseMetricStopsImprovingEndsEarlyWithItsBestCheckpoint) {
  const fs::path root =
      fs::temp_directory_path() / ("attune_early_stopping_test_" + std::to_string(::getpid()));
  ASSERT_TRUE(WriteExampleAssets(root.string(), nullptr).ok());
  TrainSpec spec;
  spec.model_dir = (root / "model").string();
  spec.task = Task::kSequenceClassification;
  spec.train_path = (root / "train.jsonl").string();
  spec.validation_path = (root / "validation.jsonl").string();
  spec.targets = {"q", "v"};
  spec.learning_rate = 1e-12;
  spec.max_steps = 100;
  spec.batch_size = 16;
  spec.max_seq_len = 32;
  spec.eval_every = 4;
  spec.keep_checkpoints = 1;
  spec.eval_metric = EvalMetric::kAccuracy;
  spec.early_stopping_patience = 2;
  Recorder observer;
  RunOptions options;
  options.output_dir = (root / "run").string();
  absl::StatusOr<TrainResult> result = RunTraining(spec, options, &observer);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome, Outcome::kCompleted);
  EXPECT_EQ(result->steps, 12);  // evaluations at 4 (the best), 8 and 12
  ASSERT_EQ(observer.evals.size(), 3u);
  EXPECT_EQ(observer.evals[1].accuracy, observer.evals[0].accuracy);
  EXPECT_EQ(observer.evals[2].accuracy, observer.evals[0].accuracy);
  EXPECT_EQ(result->stopped_early,
            absl::StrCat("stopped early at step 12: eval accuracy did not improve in 2 "
                         "evaluations; the best is step 4 (",
                         *observer.evals[0].accuracy, ")"));
  // Every evaluation was checkpointed; pruning to one kept the best (4) and the last (12).
  ASSERT_EQ(observer.checkpoints.size(), 3u);
  EXPECT_TRUE(observer.checkpoints[0].best);
  EXPECT_FALSE(observer.checkpoints[2].best);
  std::set<std::string> kept;
  for (const auto& entry : fs::directory_iterator(fs::path(options.output_dir) / "checkpoints")) {
    kept.insert(entry.path().filename().string());
  }
  EXPECT_EQ(kept, (std::set<std::string>{"step-00000004", "step-00000012"}));
  EXPECT_TRUE(fs::exists(fs::path(options.output_dir) / "eval_predictions.jsonl"));
  fs::remove_all(root);
}

}  // namespace
}  // namespace attune::engine
