#include "server/scheduler/job_observer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace attune::scheduler {
JobObserver::JobObserver(std::string job_id, std::function<int64_t()> now_us)
    : job_id_(std::move(job_id)), now_us_(std::move(now_us)) {}

store::JobEvent JobObserver::NewEvent(store::EventType type) const {
  store::JobEvent event;
  event.job_id = job_id_;
  event.time_us = now_us_();
  event.type = type;
  event.state = store::JobState::kRunning;
  return event;
}

void JobObserver::OnStart(const engine::SpecCheck& setup, int64_t resumed_from_step) {
  absl::MutexLock lock(&mu_);
  progress_.setup = setup;
  if (resumed_from_step > 0) {
    store::JobEvent event = NewEvent(store::EventType::kStateChanged);
    event.step = resumed_from_step;
    event.message = absl::StrCat("resumed from the checkpoint at step ", resumed_from_step);
    progress_.last_step = resumed_from_step;
    progress_.events.push_back(std::move(event));
  }
}

void JobObserver::OnStep(const engine::StepMetrics& step) {
  store::JobEvent event = NewEvent(store::EventType::kMetrics);
  event.step = step.step;
  event.step_metrics = step;
  absl::MutexLock lock(&mu_);
  progress_.latest_step = step;
  progress_.last_step = step.step;
  progress_.total_steps = step.total_steps;
  progress_.events.push_back(std::move(event));
}

void JobObserver::OnEval(const engine::EvalMetrics& eval) {
  store::JobEvent event = NewEvent(store::EventType::kEval);
  event.step = eval.step;
  event.eval = eval;
  absl::MutexLock lock(&mu_);
  progress_.latest_eval = eval;
  progress_.events.push_back(std::move(event));
}

store::CheckpointRecord CheckpointRecordOf(const std::string& job_id,
                                           const engine::CheckpointInfo& checkpoint,
                                           int64_t time_us) {
  store::CheckpointRecord record;
  record.job_id = job_id;
  record.step = checkpoint.step;
  record.dir = checkpoint.dir;
  record.bytes = checkpoint.adapter_bytes;
  record.sha256 = checkpoint.sha256;
  record.created_us = time_us;
  record.eval_metric = checkpoint.eval_metric;
  return record;
}

void JobObserver::OnCheckpoint(const engine::CheckpointInfo& checkpoint) {
  store::JobEvent event = NewEvent(store::EventType::kCheckpoint);
  event.step = checkpoint.step;
  event.path = checkpoint.dir;
  event.bytes = checkpoint.adapter_bytes;
  event.sha256 = checkpoint.sha256;
  event.best = checkpoint.best;
  if (checkpoint.best) event.message = "best so far by the validation metric";
  store::CheckpointRecord record = CheckpointRecordOf(job_id_, checkpoint, event.time_us);
  absl::MutexLock lock(&mu_);
  for (int64_t step : checkpoint.deleted_steps) {
    progress_.deleted_checkpoint_steps.push_back(step);
  }
  progress_.adapter_bytes = checkpoint.adapter_bytes;
  progress_.checkpoints.push_back(std::move(record));
  progress_.events.push_back(std::move(event));
}

void JobObserver::OnWarning(const std::string& message) {
  store::JobEvent event = NewEvent(store::EventType::kWarning);
  event.message = message;
  absl::MutexLock lock(&mu_);
  event.step = progress_.last_step;
  progress_.events.push_back(std::move(event));
}

void JobObserver::OnSharedBase(const std::vector<std::string>& job_ids) {
  absl::MutexLock lock(&mu_);
  for (const std::string& id : job_ids) {
    std::vector<std::string>& seen = progress_.shared_base_with;
    if (std::find(seen.begin(), seen.end(), id) == seen.end()) seen.push_back(id);
  }
}

bool JobObserver::StopRequested() { return stop_.load() != StopReason::kNone; }

void JobObserver::RequestStop(StopReason reason) {
  StopReason expected = StopReason::kNone;
  if (stop_.compare_exchange_strong(expected, reason)) return;
  // What a user asks overrides what the scheduler asked and is not taken yet: a cancel ends the
  // job CANCELLED rather than PAUSED or re-queued, a pause PAUSED rather than re-queued.
  if (reason != StopReason::kCancel && reason != StopReason::kPause) return;
  expected = StopReason::kPreempt;
  if (stop_.compare_exchange_strong(expected, reason)) return;
  expected = StopReason::kPause;
  if (reason == StopReason::kCancel) stop_.compare_exchange_strong(expected, reason);
}

JobProgress JobObserver::Drain() {
  absl::MutexLock lock(&mu_);
  JobProgress out;
  out.events = std::move(progress_.events);
  out.checkpoints = std::move(progress_.checkpoints);
  out.deleted_checkpoint_steps = std::move(progress_.deleted_checkpoint_steps);
  progress_.events.clear();
  progress_.checkpoints.clear();
  progress_.deleted_checkpoint_steps.clear();
  out.latest_step = progress_.latest_step;
  out.latest_eval = progress_.latest_eval;
  out.last_step = progress_.last_step;
  out.total_steps = progress_.total_steps;
  out.shared_base_with = progress_.shared_base_with;
  out.setup = progress_.setup;
  out.adapter_bytes = progress_.adapter_bytes;
  return out;
}

}  // namespace attune::scheduler
