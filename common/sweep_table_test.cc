#include "common/sweep_table.h"

#include <cmath>

#include "gtest/gtest.h"

namespace attune {
namespace {

EvalMetrics Eval(int64_t step, double loss, std::optional<double> accuracy) {
  EvalMetrics eval;
  eval.step = step;
  eval.loss = loss;
  eval.accuracy = accuracy;
  return eval;
}

std::vector<LossPoint> Losses(const std::vector<double>& losses) {
  std::vector<LossPoint> points;
  for (size_t i = 0; i < losses.size(); ++i)
    points.push_back({static_cast<int64_t>(i + 1), losses[i]});
  return points;
}

TEST(SweepTableTest, StdIsTheSampleStandardDeviation) {
  // Deviations -0.04, 0, 0.04: squares 0.0032, over n - 1 = 2 -> 0.0016, std 0.04 (over n it
  // would be 0.0327).
  MeanStd m = Summarize({0.70, 0.74, 0.78});
  EXPECT_EQ(m.n, 3);
  EXPECT_NEAR(*m.mean, 0.74, 1e-12);
  EXPECT_NEAR(*m.std, 0.04, 1e-12);
  MeanStd one = Summarize({5.0});
  EXPECT_EQ(one.n, 1);
  EXPECT_DOUBLE_EQ(*one.mean, 5.0);
  EXPECT_FALSE(one.std.has_value());
  EXPECT_FALSE(Summarize({}).mean.has_value());
}

TEST(SweepTableTest, StepsToConvergeOnAShortCurve) {
  // n = 5, so w = 1: start 2.0, end 0.5, target 2.0 - 0.9 * 1.5 = 0.65; step 4 (0.55) is the
  // first at or below it.
  EXPECT_EQ(StepsToConverge(Losses({2.0, 1.2, 0.8, 0.55, 0.5}), 0.9), 4);
  // A loss that did not go down has no convergence step.
  EXPECT_FALSE(StepsToConverge(Losses({1.0, 1.2, 1.5}), 0.9).has_value());
  EXPECT_FALSE(StepsToConverge(Losses({1.0}), 0.9).has_value());
}

TEST(SweepTableTest, StepsToConvergeSmoothsOverATenthOfTheSteps) {
  // n = 20, so w = 2: start mean(3, 3) = 3, end mean(1, 1) = 1, target 3 - 0.9 * 2 = 1.2.
  // Trailing means of 2: step 3 (3+1)/2 = 2, step 4 1.8, step 5 2.3, step 6 1.7, step 7
  // (1.4+0.9)/2 = 1.15 <= 1.2. The lucky batch at step 3 (raw 1.0) does not count.
  std::vector<double> losses = {3, 3, 1.0, 2.6, 2, 1.4, 0.9};
  losses.resize(20, 1.0);
  EXPECT_EQ(StepsToConverge(Losses(losses), 0.9), 7);
}

TEST(SweepTableTest, StepsToConvergeSkipsNonFiniteLosses) {
  std::vector<LossPoint> points = Losses({2.0, 1.2, 0.8, 0.55, 0.5});
  points.insert(points.begin() + 1, {2, std::nan("")});  // a skipped step between 1 and 2
  EXPECT_EQ(StepsToConverge(points, 0.9), 4);
}

TEST(SweepTableTest, EvalCurveAreaIsTheMeanOverTheStepsSpanned) {
  // Trapezoids: 10 * (0.5 + 0.7) / 2 = 6 and 20 * (0.7 + 0.8) / 2 = 15; 21 / 30 steps = 0.7.
  std::vector<EvalMetrics> evals = {Eval(10, 0.9, 0.5), Eval(20, 0.8, 0.7), Eval(40, 0.6, 0.8)};
  EXPECT_NEAR(*EvalCurveArea(evals, "accuracy"), 0.7, 1e-12);
  EXPECT_NEAR(*EvalCurveArea({Eval(10, 0.9, 0.5)}, "accuracy"), 0.5, 1e-12);
  EXPECT_FALSE(EvalCurveArea({Eval(10, 0.9, std::nullopt)}, "accuracy").has_value());
  EXPECT_FALSE(EvalCurveArea({Eval(10, 0.9, 0.5)}, "mcc-not-yet").has_value());
}

TEST(SweepTableTest, BestDevMetricFollowsTheMetricsDirection) {
  std::vector<EvalMetrics> evals = {Eval(10, 0.9, 0.5), Eval(20, 0.4, 0.8), Eval(30, 0.6, 0.7)};
  EXPECT_DOUBLE_EQ(*BestDevMetric(evals, "accuracy"), 0.8);
  EXPECT_DOUBLE_EQ(*BestDevMetric(evals, "loss"), 0.4);
  EXPECT_FALSE(BestDevMetric(evals, "pearson").has_value());
}

SweepRun MakeRun(const std::string& id, int index, const std::string& targets,
                 const std::string& seed, const std::string& state, double accuracy) {
  SweepRun run;
  run.job_id = id;
  run.state = state;
  run.labels = {{"attune.sweep", "s-1"},
                {"attune.sweep.index", std::to_string(index)},
                {"attune.grid.targets", targets},
                {"attune.grid.seed", seed},
                {"team", "nlp"}};
  run.evals = {Eval(5, 0.7, accuracy - 0.1), Eval(10, 0.5, accuracy)};
  run.train_loss = Losses({2.0, 1.2, 0.8, 0.55, 0.5});
  run.trainable_parameters = targets == "q,v" ? 1000 : 1500;
  run.adapter_bytes = targets == "q,v" ? 4000 : 6000;
  run.wall_seconds = 2.0 + index;
  return run;
}

TEST(SweepTableTest, GroupsByConfigurationWithoutTheSeed) {
  // Listed newest first, as ListJobs returns them; the table is in grid order.
  std::vector<SweepRun> runs = {MakeRun("j4", 3, "q,v", "1", "SUCCEEDED", 0.9),
                                MakeRun("j3", 2, "q,v", "0", "SUCCEEDED", 0.8),
                                MakeRun("j5", 4, "q,k,v", "2", "FAILED", 0.1),
                                MakeRun("j2", 1, "q,k,v", "1", "SUCCEEDED", 0.6),
                                MakeRun("j1", 0, "q,k,v", "0", "SUCCEEDED", 0.7)};
  absl::StatusOr<SweepTable> table = BuildSweepTable("s-1", runs, "");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->metric, "accuracy");
  EXPECT_TRUE(table->higher_is_better);
  EXPECT_EQ(table->grid_fields, std::vector<std::string>{"targets"});
  ASSERT_EQ(table->groups.size(), 2u);
  const SweepGroup& qkv = table->groups[0];
  EXPECT_EQ(qkv.config, (std::map<std::string, std::string>{{"targets", "q,k,v"}}));
  EXPECT_EQ(qkv.jobs, 3);
  EXPECT_EQ(qkv.job_ids, (std::vector<std::string>{"j1", "j2", "j5"}));
  EXPECT_EQ(qkv.seeds, (std::vector<std::string>{"0", "1"}));  // the FAILED one is not counted
  EXPECT_EQ(qkv.dev_metric.n, 2);
  EXPECT_NEAR(*qkv.dev_metric.mean, 0.65, 1e-12);
  EXPECT_NEAR(*qkv.dev_metric.std, std::sqrt(0.005), 1e-12);  // (0.05^2 * 2) / 1
  EXPECT_DOUBLE_EQ(*qkv.trainable_parameters.mean, 1500);
  EXPECT_DOUBLE_EQ(*qkv.adapter_bytes.mean, 6000);
  EXPECT_DOUBLE_EQ(*qkv.wall_seconds.mean, 2.5);
  EXPECT_DOUBLE_EQ(*qkv.steps_to_converge.mean, 4);
  // AUC of (5, a - 0.1), (10, a): a - 0.05; mean over a = 0.7, 0.6.
  EXPECT_NEAR(*qkv.eval_auc.mean, 0.6, 1e-12);
  const SweepGroup& qv = table->groups[1];
  EXPECT_EQ(qv.job_ids, (std::vector<std::string>{"j3", "j4"}));
  EXPECT_NEAR(*qv.dev_metric.mean, 0.85, 1e-12);

  absl::StatusOr<SweepTable> by_loss = BuildSweepTable("s-1", runs, "loss");
  ASSERT_TRUE(by_loss.ok());
  EXPECT_FALSE(by_loss->higher_is_better);
  EXPECT_DOUBLE_EQ(*by_loss->groups[0].dev_metric.mean, 0.5);
}

TEST(SweepTableTest, DefaultMetricIsTheJobsEvalMetric) {
  // CoLA jobs rank their checkpoints by mcc: the table must compare mcc, not the accuracy that
  // every classification evaluation also reports.
  std::vector<SweepRun> runs = {MakeRun("j1", 0, "q,v", "0", "SUCCEEDED", 0.69),
                                MakeRun("j2", 1, "q,v", "1", "SUCCEEDED", 0.70)};
  for (SweepRun& run : runs) {
    run.eval_metric = "mcc";
    run.evals[0].mcc = 0.1;
    run.evals[1].mcc = run.job_id == "j1" ? 0.3 : 0.2;
  }
  absl::StatusOr<SweepTable> table = BuildSweepTable("s-1", runs, "");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->metric, "mcc");
  EXPECT_NEAR(*table->groups[0].dev_metric.mean, 0.25, 1e-12);

  runs[1].eval_metric = "accuracy";  // jobs that disagree: the accuracy, as before
  EXPECT_EQ(BuildSweepTable("s-1", runs, "")->metric, "accuracy");
  runs[1].eval_metric = "";  // a job that names none does not outvote the others
  EXPECT_EQ(BuildSweepTable("s-1", runs, "")->metric, "mcc");
}

TEST(SweepTableTest, UnknownMetricIsInvalidArgument) {
  absl::StatusOr<SweepTable> table = BuildSweepTable("s-1", {}, "acc");
  EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(table.status().message(),
            "metric: unknown metric 'acc'; expected one of accuracy, f1, mcc, loss, pearson, "
            "spearman, perplexity");
}

TEST(SweepTableTest, JsonHasNullsForAbsentValues) {
  std::vector<SweepRun> runs = {MakeRun("j1", 0, "q,v", "0", "SUCCEEDED", 0.7)};
  nlohmann::json json = SweepTableToJson(*BuildSweepTable("s-1", runs, ""));
  EXPECT_EQ(json["sweepId"], "s-1");
  EXPECT_EQ(json["convergenceFraction"], 0.9);
  EXPECT_EQ(json["groups"][0]["config"]["targets"], "q,v");
  EXPECT_EQ(json["groups"][0]["devMetric"]["n"], 1);
  EXPECT_DOUBLE_EQ(json["groups"][0]["devMetric"]["mean"].get<double>(), 0.7);
  EXPECT_TRUE(json["groups"][0]["devMetric"]["std"].is_null());
}

}  // namespace
}  // namespace attune
