// Which of a job's checkpoints to keep: each new one is written (checkpoint.h), ranked by its
// evaluation against the best so far (attune::Outranks), and the older ones beyond
// TrainSpec::keep_checkpoints pruned, the best always kept. Internal to the engine (LibTorch).
//
// The observer hears of every checkpoint written (OnCheckpoint, with the steps pruned) and of
// every old checkpoint that could not be removed (OnWarning, naming the path and the OS error;
// such a step is not among the deleted ones). Thread-compatible: owned and called by one job's
// training thread.
#ifndef ATTUNE_SERVER_ENGINE_CHECKPOINT_KEEPER_H_
#define ATTUNE_SERVER_ENGINE_CHECKPOINT_KEEPER_H_

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "server/engine/checkpoint.h"
#include "server/engine/trainer.h"

namespace attune::engine {

class CheckpointKeeper {
 public:
  // `observer` must outlive the keeper. `rank_by` is the job's eval_metric (RankingMetric).
  // `remove` deletes pruned checkpoints (tests inject failures through it).
  CheckpointKeeper(std::string output_dir, int keep_last, EvalMetric rank_by,
                   TrainingObserver* observer, TreeRemover remove = &RemoveTree);

  // Continues from a resumed checkpoint: its best so far and its step; `info`
  // (DescribeCheckpoint) becomes last() until a new checkpoint is saved, so that a run resumed
  // at its end still reports the checkpoint it ended with (an attempt that crashed after
  // writing it may not have reported it).
  void Restore(const LoadedCheckpoint& checkpoint, CheckpointInfo info);

  // Writes `content` (filling in its progress' best score and step), ranked by `eval` when that
  // evaluated this very step, then prunes. Errors as WriteCheckpoint; pruning never fails.
  absl::Status Save(CheckpointContent content, const std::optional<EvalMetrics>& eval);

  // The step of the newest checkpoint written or restored; 0 before any.
  int64_t last_step() const { return last_step_; }
  // The newest checkpoint written by this run, if any.
  const std::optional<CheckpointInfo>& last() const { return last_; }

 private:
  // Constant after construction.
  const std::string output_dir_;
  const int keep_last_;
  const EvalMetric rank_by_;
  TrainingObserver* const observer_;
  const TreeRemover remove_;
  // Progress.
  double best_score_ = -INFINITY;
  int64_t best_step_ = -1;
  int64_t last_step_ = 0;
  std::optional<CheckpointInfo> last_;
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_CHECKPOINT_KEEPER_H_
