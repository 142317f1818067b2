#include "common/metrics.h"

namespace attune {

double RankingMetric(const EvalMetrics& eval) {
  return eval.accuracy.has_value() ? *eval.accuracy : -eval.loss;
}

bool Outranks(const RankedCheckpoint& a, const RankedCheckpoint& b) {
  if (a.metric != b.metric) return a.metric > b.metric;
  return a.step < b.step;
}

}  // namespace attune
