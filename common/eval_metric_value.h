// The value of one evaluation metric in an evaluation, as people read it: the one switch over
// EvalMetric that both the checkpoint ranking (common/metrics.h, RankingMetric) and the
// ListCheckpoints answer (server/api/checkpoint_list.h) use.
#ifndef ATTUNE_COMMON_EVAL_METRIC_VALUE_H_
#define ATTUNE_COMMON_EVAL_METRIC_VALUE_H_

#include <optional>

#include "common/metrics.h"

namespace attune {

// The value of `metric` in `eval` (the loss itself for kLoss; RankingMetric negates it); nullopt
// when the evaluation lacks it, and for kUnspecified. Pure and thread-safe.
std::optional<double> EvalMetricValue(const EvalMetrics& eval, EvalMetric metric);

}  // namespace attune

#endif  // ATTUNE_COMMON_EVAL_METRIC_VALUE_H_
