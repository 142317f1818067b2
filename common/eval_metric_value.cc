#include "common/eval_metric_value.h"

namespace attune {

std::optional<double> EvalMetricValue(const EvalMetrics& eval, EvalMetric metric) {
  switch (metric) {
    case EvalMetric::kAccuracy:
      return eval.accuracy;
    case EvalMetric::kF1:
      return eval.f1;
    case EvalMetric::kMcc:
      return eval.mcc;
    case EvalMetric::kPearson:
      return eval.pearson;
    case EvalMetric::kSpearman:
      return eval.spearman;
    case EvalMetric::kLoss:
      return eval.loss;
    case EvalMetric::kUnspecified:
      break;
  }
  return std::nullopt;
}

}  // namespace attune
