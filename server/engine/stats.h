// The GLUE evaluation metrics from predictions: accuracy, F1 and Matthews correlation for
// classification, Pearson and Spearman correlation for regression. Plain C++, thread-safe, no
// allocation beyond the rank and count vectors.
#ifndef ATTUNE_SERVER_ENGINE_STATS_H_
#define ATTUNE_SERVER_ENGINE_STATS_H_

#include <cstdint>
#include <optional>
#include <vector>

namespace attune::engine {

// Pearson's r of two equally long series; 0 when either has no variance or fewer than 2 points.
double Pearson(const std::vector<double>& x, const std::vector<double>& y);

// Spearman's rho: Pearson's r of the ranks, ties getting their average rank.
double Spearman(const std::vector<double>& x, const std::vector<double>& y);

// Class predictions scored against the true labels.
struct ClassificationScores {
  double accuracy = 0;       // correct / examples
  std::optional<double> f1;  // two classes only: F1 of class 1 = 2TP / (2TP + FP + FN)
  // Matthews correlation over the confusion matrix C (rows true, columns predicted), in its
  // multi-class form (Gorodkin 2004, as scikit-learn): with c = trace, s = examples, t_k and p_k
  // the true and predicted counts of class k,
  //   mcc = (c s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2) (s^2 - sum_k t_k^2)),
  // which for two classes is (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)).
  double mcc = 0;
};

// Scores `predicted` against `labels` (equally long, class ids in [0, num_classes)). An F1 or
// MCC whose denominator is 0 (e.g. one class predicted throughout) is 0, as scikit-learn's.
// Empty input scores 0 throughout.
ClassificationScores ScoreClassification(const std::vector<int64_t>& predicted,
                                         const std::vector<int64_t>& labels, int64_t num_classes);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_STATS_H_
