#include "server/engine/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace attune::engine {
namespace {

std::vector<double> Ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> ranks(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double average = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = average;
    i = j + 1;
  }
  return ranks;
}

}  // namespace

double Pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = std::min(x.size(), y.size());
  if (n < 2) return 0.0;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx <= 0 || syy <= 0) return 0.0;
  return sxy / std::sqrt(sxx * syy);
}

ClassificationScores ScoreClassification(const std::vector<int64_t>& predicted,
                                         const std::vector<int64_t>& labels, int64_t num_classes) {
  ClassificationScores scores;
  const size_t n = std::min(predicted.size(), labels.size());
  if (n == 0 || num_classes < 1) return scores;
  std::vector<double> true_count(num_classes, 0), predicted_count(num_classes, 0);
  double correct = 0, tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < n; ++i) {
    const int64_t p = predicted[i], t = labels[i];
    if (p < 0 || p >= num_classes || t < 0 || t >= num_classes) continue;
    ++predicted_count[p];
    ++true_count[t];
    if (p == t) ++correct;
    if (p == 1 && t == 1) ++tp;
    if (p == 1 && t != 1) ++fp;
    if (p != 1 && t == 1) ++fn;
  }
  const double s = static_cast<double>(n);
  scores.accuracy = correct / s;
  if (num_classes == 2) scores.f1 = tp > 0 ? 2 * tp / (2 * tp + fp + fn) : 0.0;
  double pt = 0, pp = 0, tt = 0;
  for (int64_t k = 0; k < num_classes; ++k) {
    pt += predicted_count[k] * true_count[k];
    pp += predicted_count[k] * predicted_count[k];
    tt += true_count[k] * true_count[k];
  }
  const double denominator = std::sqrt((s * s - pp) * (s * s - tt));
  scores.mcc = denominator > 0 ? (correct * s - pt) / denominator : 0.0;
  return scores;
}

double Spearman(const std::vector<double>& x, const std::vector<double>& y) {
  return Pearson(Ranks(x), Ranks(y));
}

}  // namespace attune::engine
