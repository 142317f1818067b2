// EvalMetricValue: each metric's own value (the loss unnegated), nullopt where missing.
#include "common/eval_metric_value.h"

#include "gtest/gtest.h"

namespace attune {
namespace {

TEST(EvalMetricValueTest, EachMetricIsItsOwnValue) {
  EvalMetrics eval;
  eval.loss = 0.25;
  eval.accuracy = 0.75;
  eval.mcc = 0.5;
  EXPECT_EQ(EvalMetricValue(eval, EvalMetric::kAccuracy), 0.75);
  EXPECT_EQ(EvalMetricValue(eval, EvalMetric::kMcc), 0.5);
  EXPECT_EQ(EvalMetricValue(eval, EvalMetric::kLoss), 0.25);  // RankingMetric says -0.25
  EXPECT_DOUBLE_EQ(RankingMetric(eval, EvalMetric::kLoss), -0.25);
  EXPECT_EQ(EvalMetricValue(eval, EvalMetric::kF1), std::nullopt);
  EXPECT_EQ(EvalMetricValue(eval, EvalMetric::kPearson), std::nullopt);
  EXPECT_EQ(EvalMetricValue(eval, EvalMetric::kUnspecified), std::nullopt);
}

}  // namespace
}  // namespace attune
