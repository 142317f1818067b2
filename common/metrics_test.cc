#include "common/metrics.h"

#include "gtest/gtest.h"

namespace attune {
namespace {

TEST(MetricsTest, RankingMetricIsAccuracyElseMinusLoss) {
  EvalMetrics classification;
  classification.loss = 0.7;
  classification.accuracy = 0.8;
  EXPECT_DOUBLE_EQ(RankingMetric(classification), 0.8);
  EvalMetrics regression;
  regression.loss = 0.25;
  EXPECT_DOUBLE_EQ(RankingMetric(regression), -0.25);
}

TEST(MetricsTest, RankingMetricIsTheChosenMetric) {
  EvalMetrics cola;
  cola.loss = 0.6;
  cola.accuracy = 0.7;
  cola.f1 = 0.8;
  cola.mcc = 0.3;
  EXPECT_DOUBLE_EQ(RankingMetric(cola, EvalMetric::kMcc), 0.3);
  EXPECT_DOUBLE_EQ(RankingMetric(cola, EvalMetric::kF1), 0.8);
  EXPECT_DOUBLE_EQ(RankingMetric(cola, EvalMetric::kAccuracy), 0.7);
  EXPECT_DOUBLE_EQ(RankingMetric(cola, EvalMetric::kLoss), -0.6);
  EvalMetrics stsb;
  stsb.loss = 1.5;
  stsb.pearson = 0.6;
  stsb.spearman = 0.55;
  EXPECT_DOUBLE_EQ(RankingMetric(stsb, EvalMetric::kPearson), 0.6);
  EXPECT_DOUBLE_EQ(RankingMetric(stsb, EvalMetric::kSpearman), 0.55);
  // A metric the evaluation lacks (an old row) falls back to accuracy, else minus the loss.
  EXPECT_DOUBLE_EQ(RankingMetric(stsb, EvalMetric::kMcc), -1.5);
}

TEST(MetricsTest, EvalMetricNamesRoundTrip) {
  for (EvalMetric m : {EvalMetric::kAccuracy, EvalMetric::kF1, EvalMetric::kMcc,
                       EvalMetric::kPearson, EvalMetric::kSpearman, EvalMetric::kLoss}) {
    absl::StatusOr<EvalMetric> parsed = ParseEvalMetric(EvalMetricName(m));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, m);
  }
  absl::StatusOr<EvalMetric> bad = ParseEvalMetric("auc");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "eval_metric: unknown 'auc'; expected accuracy, f1, mcc, pearson, spearman or loss");
}

TEST(MetricsTest, HigherMetricWinsAndTheEarlierStepKeepsATie) {
  EXPECT_TRUE(Outranks({20, 0.9}, {10, 0.8}));
  EXPECT_FALSE(Outranks({20, 0.8}, {10, 0.9}));
  EXPECT_TRUE(Outranks({10, 0.9}, {20, 0.9}));
  EXPECT_FALSE(Outranks({20, 0.9}, {10, 0.9}));
}

}  // namespace
}  // namespace attune
