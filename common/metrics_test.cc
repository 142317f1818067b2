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

TEST(MetricsTest, HigherMetricWinsAndTheEarlierStepKeepsATie) {
  EXPECT_TRUE(Outranks({20, 0.9}, {10, 0.8}));
  EXPECT_FALSE(Outranks({20, 0.8}, {10, 0.9}));
  EXPECT_TRUE(Outranks({10, 0.9}, {20, 0.9}));
  EXPECT_FALSE(Outranks({20, 0.9}, {10, 0.9}));
}

}  // namespace
}  // namespace attune
