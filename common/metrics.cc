#include "common/metrics.h"

#include "absl/strings/str_cat.h"
#include "common/eval_metric_value.h"

namespace attune {
namespace {

// The value of `by` in `eval`, if `eval` has it (minus the loss: higher is better).
std::optional<double> ChosenMetric(const EvalMetrics& eval, EvalMetric by) {
  if (by == EvalMetric::kLoss) return -eval.loss;
  return EvalMetricValue(eval, by);
}

}  // namespace

std::string EvalMetricName(EvalMetric metric) {
  switch (metric) {
    case EvalMetric::kAccuracy:
      return "accuracy";
    case EvalMetric::kF1:
      return "f1";
    case EvalMetric::kMcc:
      return "mcc";
    case EvalMetric::kPearson:
      return "pearson";
    case EvalMetric::kSpearman:
      return "spearman";
    case EvalMetric::kLoss:
      return "loss";
    case EvalMetric::kUnspecified:
      break;
  }
  return "";
}

absl::StatusOr<EvalMetric> ParseEvalMetric(const std::string& name) {
  for (EvalMetric m : {EvalMetric::kAccuracy, EvalMetric::kF1, EvalMetric::kMcc,
                       EvalMetric::kPearson, EvalMetric::kSpearman, EvalMetric::kLoss}) {
    if (name == EvalMetricName(m)) return m;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "eval_metric: unknown '", name, "'; expected accuracy, f1, mcc, pearson, spearman or loss"));
}

double RankingMetric(const EvalMetrics& eval, EvalMetric by) {
  if (std::optional<double> chosen = ChosenMetric(eval, by)) return *chosen;
  return eval.accuracy.has_value() ? *eval.accuracy : -eval.loss;
}

bool Outranks(const RankedCheckpoint& a, const RankedCheckpoint& b) {
  if (a.metric != b.metric) return a.metric > b.metric;
  return a.step < b.step;
}

}  // namespace attune
