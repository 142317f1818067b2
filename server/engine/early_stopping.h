// Early stopping: a job ends once `patience` evaluations in a row have not beaten the best one
// by the job's eval_metric (TrainSpec::early_stopping_patience, TrainSpec::eval_metric).
//
// "Beaten" is the one best-checkpoint rule, attune::Outranks on attune::RankingMetric
// (common/metrics.h): a strictly higher metric; a tie keeps the earlier evaluation the best. The
// training run checkpoints every evaluation while early stopping is on, so the best evaluation
// always has a checkpoint, which pruning keeps. After a resume the count starts again from 0 (a
// checkpoint does not record the evaluations since the best). Plain C++, no LibTorch;
// thread-compatible (one job's training thread).
#ifndef ATTUNE_SERVER_ENGINE_EARLY_STOPPING_H_
#define ATTUNE_SERVER_ENGINE_EARLY_STOPPING_H_

#include <cstdint>
#include <string>

#include "common/metrics.h"

namespace attune::engine {

class EarlyStopping {
 public:
  // `patience` 0 = off: ShouldStop is never true. `rank_by` is the job's eval_metric.
  EarlyStopping(int patience, EvalMetric rank_by);

  // Records the evaluation at `eval.step`; returns true when the job should stop now.
  bool Observe(const EvalMetrics& eval);

  bool enabled() const { return patience_ > 0; }
  // Why the job stopped, for its final state's message, e.g. "stopped early at step 60: eval
  // accuracy did not improve in 3 evaluations; the best is step 30 (0.91)". Empty before then.
  const std::string& reason() const { return reason_; }

 private:
  // Constant after construction.
  const int patience_;
  const EvalMetric rank_by_;
  // Progress.
  int64_t best_step_ = -1;
  double best_metric_ = 0;
  int evaluations_without_improvement_ = 0;
  std::string reason_;
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_EARLY_STOPPING_H_
