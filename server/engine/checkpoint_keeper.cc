#include "server/engine/checkpoint_keeper.h"

#include <cmath>
#include <utility>

#include "common/metrics.h"
#include "common/status_macros.h"

namespace attune::engine {

CheckpointKeeper::CheckpointKeeper(std::string output_dir, int keep_last, EvalMetric rank_by,
                                   TrainingObserver* observer, TreeRemover remove)
    : output_dir_(std::move(output_dir)),
      keep_last_(keep_last),
      rank_by_(rank_by),
      observer_(observer),
      remove_(std::move(remove)) {}

void CheckpointKeeper::Restore(const LoadedCheckpoint& checkpoint, CheckpointInfo info) {
  best_score_ = checkpoint.progress.best_score.value_or(-INFINITY);
  best_step_ = checkpoint.progress.best_step;
  last_step_ = checkpoint.step;
  info.best = best_step_ == checkpoint.step;
  if (info.best && std::isfinite(best_score_)) info.eval_metric = best_score_;
  last_ = std::move(info);
}

absl::Status CheckpointKeeper::Save(CheckpointContent content,
                                    const std::optional<EvalMetrics>& eval) {
  const int64_t step = content.step;
  std::optional<double> metric;
  bool best = false;
  if (eval.has_value() && eval->step == step) {
    metric = RankingMetric(*eval, rank_by_);
    if (best_step_ < 0 || Outranks({step, *metric}, {best_step_, best_score_})) {
      best_score_ = *metric;
      best_step_ = step;
      best = true;
    }
  }
  if (std::isfinite(best_score_)) content.progress.best_score = best_score_;
  content.progress.best_step = best_step_;
  ASSIGN_OR_RETURN(CheckpointInfo info, WriteCheckpoint(output_dir_, content));
  info.eval_metric = metric;
  info.best = best;
  PruneResult pruned = PruneCheckpoints(output_dir_, keep_last_, best_step_, remove_);
  info.deleted_steps = std::move(pruned.deleted);
  for (const std::string& warning : pruned.warnings) observer_->OnWarning(warning);
  last_step_ = step;
  last_ = info;
  observer_->OnCheckpoint(info);
  return absl::OkStatus();
}

}  // namespace attune::engine
