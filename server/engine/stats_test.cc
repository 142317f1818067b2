// Each GLUE metric against values worked out independently here: by hand from small contingency
// tables and series, and by a second formula (MCC as the Pearson correlation of the 0/1 vectors,
// Spearman as the Pearson correlation of average ranks), both computed with this file's own
// helpers, never with stats.cc's.
#include "server/engine/stats.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace attune::engine {
namespace {

// Pearson's r from its textbook definition, independent of stats.cc.
double ReferencePearson(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double sx = 0, sy = 0, sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sx += x[i];
    sy += y[i];
    sxy += x[i] * y[i];
    sxx += x[i] * x[i];
    syy += y[i] * y[i];
  }
  return (n * sxy - sx * sy) / std::sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
}

// Average ranks by counting: rank = 1 + (values below) + (equal values other than this) / 2.
std::vector<double> ReferenceRanks(const std::vector<double>& v) {
  std::vector<double> ranks;
  for (double a : v) {
    double below = 0, equal = 0;
    for (double b : v) {
      below += b < a;
      equal += b == a;
    }
    ranks.push_back(1 + below + (equal - 1) / 2);
  }
  return ranks;
}

std::vector<double> AsDoubles(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

// A binary case with TP = 3, FP = 1, FN = 2, TN = 4 (10 examples).
const std::vector<int64_t> kLabels = {1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
const std::vector<int64_t> kPredicted = {1, 1, 1, 0, 0, 1, 0, 0, 0, 0};

TEST(StatsTest, BinaryScoresMatchTheContingencyTable) {
  ClassificationScores s = ScoreClassification(kPredicted, kLabels, 2);
  EXPECT_DOUBLE_EQ(s.accuracy, 7.0 / 10);  // TP + TN
  ASSERT_TRUE(s.f1.has_value());
  // precision 3/4, recall 3/5: F1 = 2 p r / (p + r) = 2 (9/20) / (27/20) = 2/3.
  EXPECT_NEAR(*s.f1, 2.0 / 3, 1e-12);
  // (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (12 - 2) / sqrt(4 5 5 6).
  EXPECT_NEAR(s.mcc, 10 / std::sqrt(600.0), 1e-12);
}

TEST(StatsTest, BinaryMccIsThePearsonCorrelationOfTheZeroOneVectors) {
  const std::vector<int64_t> labels = {0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1};
  const std::vector<int64_t> predicted = {0, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0, 1, 1, 1, 1};
  EXPECT_NEAR(ScoreClassification(predicted, labels, 2).mcc,
              ReferencePearson(AsDoubles(predicted), AsDoubles(labels)), 1e-12);
}

TEST(StatsTest, MulticlassMccByHand) {
  // Confusion (true x predicted): C00 = 2, C12 = 1, C20 = 1, C22 = 2. c = 4, s = 6, true counts
  // (2, 1, 3), predicted counts (3, 0, 3): (4*6 - (6 + 0 + 9)) / sqrt((36 - 18)(36 - 14)).
  ClassificationScores s = ScoreClassification({0, 0, 2, 2, 0, 2}, {0, 0, 1, 2, 2, 2}, 3);
  EXPECT_NEAR(s.mcc, 9 / std::sqrt(18.0 * 22.0), 1e-12);
  EXPECT_DOUBLE_EQ(s.accuracy, 4.0 / 6);
  EXPECT_FALSE(s.f1.has_value());  // F1 of "the positive class" needs two classes
}

TEST(StatsTest, OneClassPredictedThroughoutScoresZeroMccAndF1) {
  // Predicting the majority throughout: accuracy 3/5, but no correlation and no positives.
  ClassificationScores s = ScoreClassification({0, 0, 0, 0, 0}, {0, 1, 0, 1, 0}, 2);
  EXPECT_DOUBLE_EQ(s.accuracy, 3.0 / 5);
  EXPECT_DOUBLE_EQ(s.mcc, 0.0);
  EXPECT_DOUBLE_EQ(*s.f1, 0.0);
  // All positive, all right: F1 1, MCC 0 (no negatives, so no correlation is defined).
  ClassificationScores all = ScoreClassification({1, 1}, {1, 1}, 2);
  EXPECT_DOUBLE_EQ(*all.f1, 1.0);
  EXPECT_DOUBLE_EQ(all.mcc, 0.0);
}

TEST(StatsTest, PearsonByHand) {
  // dx = (-1.5, -0.5, 0.5, 1.5), dy = (-3, -1, 0, 4): sxy = 11, sxx = 5, syy = 26.
  EXPECT_NEAR(Pearson({1, 2, 3, 4}, {2, 4, 5, 9}), 11 / std::sqrt(130.0), 1e-12);
  EXPECT_NEAR(Pearson({1, 2, 3, 4}, {8, 6, 4, 2}), -1.0, 1e-12);
  EXPECT_DOUBLE_EQ(Pearson({1, 1, 1}, {1, 2, 3}), 0.0);  // no variance
}

TEST(StatsTest, SpearmanGivesTiesTheirAverageRank) {
  // Ranks x = (1, 2.5, 2.5, 4), y = (1, 3, 2, 4): sxy = 4.5, sxx = 4.5, syy = 5.
  EXPECT_NEAR(Spearman({1, 2, 2, 3}, {1, 3, 2, 4}), 4.5 / std::sqrt(4.5 * 5), 1e-12);
  // Monotone but not linear: rho 1, r below 1.
  EXPECT_NEAR(Spearman({1, 2, 3, 4}, {1, 10, 100, 1000}), 1.0, 1e-12);
}

TEST(StatsTest, SpearmanIsThePearsonCorrelationOfAverageRanks) {
  // STS-B-like scores with many ties (labels in steps of 0.2).
  const std::vector<double> x = {0.0, 1.2, 3.8, 5.0, 3.8, 2.4, 2.4, 2.4, 0.0, 4.6, 1.2, 3.8};
  const std::vector<double> y = {0.3, 0.9, 4.1, 4.1, 3.0, 2.2, 2.9, 1.7, 0.3, 4.8, 2.2, 3.3};
  EXPECT_NEAR(Spearman(x, y), ReferencePearson(ReferenceRanks(x), ReferenceRanks(y)), 1e-12);
  EXPECT_NEAR(Pearson(x, y), ReferencePearson(x, y), 1e-12);
}

}  // namespace
}  // namespace attune::engine
