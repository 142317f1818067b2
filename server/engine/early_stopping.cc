#include "server/engine/early_stopping.h"

#include "absl/strings/str_cat.h"

namespace attune::engine {

EarlyStopping::EarlyStopping(int patience, EvalMetric rank_by)
    : patience_(patience), rank_by_(rank_by) {}

bool EarlyStopping::Observe(const EvalMetrics& eval) {
  if (!enabled()) return false;
  const double metric = RankingMetric(eval, rank_by_);
  if (best_step_ < 0 || Outranks({eval.step, metric}, {best_step_, best_metric_})) {
    best_step_ = eval.step;
    best_metric_ = metric;
    evaluations_without_improvement_ = 0;
    return false;
  }
  if (++evaluations_without_improvement_ < patience_) return false;
  const std::string name =
      rank_by_ == EvalMetric::kUnspecified ? "metric" : EvalMetricName(rank_by_);
  // The loss ranks as minus itself; report it as people read it.
  const double best = rank_by_ == EvalMetric::kLoss ? -best_metric_ : best_metric_;
  reason_ = absl::StrCat("stopped early at step ", eval.step, ": eval ", name,
                         " did not improve in ", evaluations_without_improvement_,
                         " evaluations; the best is step ", best_step_, " (", best, ")");
  return true;
}

}  // namespace attune::engine
