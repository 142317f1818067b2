// The scheduler's publisher: writes running jobs' buffered progress to the store, records their
// checkpoints, and retries the writes that failed (progress, checkpoint records, ended jobs) until
// the store takes them.
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/scheduler/job_observer.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/scheduler_events.h"

namespace attune::scheduler {
namespace {

using store::EventType;
using store::Job;
using store::JobEvent;

bool HasNews(const JobProgress& progress) {
  return !progress.events.empty() || !progress.checkpoints.empty() ||
         !progress.deleted_checkpoint_steps.empty();
}

}  // namespace

void Scheduler::PublishLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (!publisher_stop_) publish_cv_.WaitWithTimeout(&mu_, options_.event_flush_interval);
      if (publisher_stop_) return;
    }
    absl::MutexLock flush_lock(&flush_mu_);
    FlushProgress();
    RetryUnrecorded();
  }
}

void Scheduler::FlushProgress() {
  // Only jobs whose thread runs: a job still being started has no row of its own to write yet.
  // A started job is retired only by FinishJob, which needs flush_mu_, so `running` stays valid.
  std::vector<std::pair<RunningJob*, JobProgress>> batch;
  std::vector<Job> jobs;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, running] : running_) {
      if (!running->started) continue;
      JobProgress progress = running->observer->Drain();
      if (!HasNews(progress) && running->unrecorded_events.empty() &&
          running->unrecorded_checkpoints.empty() && running->unrecorded_deletions.empty()) {
        continue;
      }
      ApplyProgress(progress, &running->job);
      jobs.push_back(running->job);
      batch.emplace_back(running.get(), std::move(progress));
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    auto& [running, progress] = batch[i];
    std::vector<JobEvent> events = std::move(running->unrecorded_events);
    running->unrecorded_events.clear();
    events.insert(events.end(), std::make_move_iterator(progress.events.begin()),
                  std::make_move_iterator(progress.events.end()));
    RecordCheckpoints(running, progress, &events);
    if (events.empty()) continue;
    absl::StatusOr<std::vector<JobEvent>> written = events_.Record(jobs[i], events);
    if (!written.ok()) {
      LogJobError(jobs[i].id, absl::StrCat("could not record ", events.size(),
                                           " event(s); retrying: ", written.status().ToString()));
      running->unrecorded_events = std::move(events);
    }
  }
}

void Scheduler::RecordCheckpoints(RunningJob* running, const JobProgress& progress,
                                  std::vector<JobEvent>* events) {
  std::vector<store::CheckpointRecord> records = std::move(running->unrecorded_checkpoints);
  running->unrecorded_checkpoints.clear();
  const size_t retried = records.size();
  records.insert(records.end(), progress.checkpoints.begin(), progress.checkpoints.end());
  std::vector<int64_t> deletions = std::move(running->unrecorded_deletions);
  running->unrecorded_deletions.clear();
  deletions.insert(deletions.end(), progress.deleted_checkpoint_steps.begin(),
                   progress.deleted_checkpoint_steps.end());
  std::vector<int64_t> failed_new;  // steps seen for the first time that could not be recorded
  absl::Status first_error;
  for (size_t i = 0; i < records.size(); ++i) {
    absl::Status recorded = store_->InsertCheckpoint(records[i]);
    if (recorded.ok()) continue;
    if (first_error.ok()) first_error = recorded;
    if (i >= retried) failed_new.push_back(records[i].step);
    running->unrecorded_checkpoints.push_back(records[i]);
  }
  for (int64_t step : deletions) {
    absl::Status deleted = store_->DeleteCheckpoint(running->queued.id, step);
    if (deleted.ok() || absl::IsNotFound(deleted)) continue;
    if (first_error.ok()) first_error = deleted;
    running->unrecorded_deletions.push_back(step);
  }
  if (first_error.ok()) return;
  LogJobError(running->queued.id,
              absl::StrCat("could not record checkpoints; retrying: ", first_error.ToString()));
  if (failed_new.empty()) return;
  JobEvent warning;
  warning.job_id = running->queued.id;
  warning.time_us = NowUs();
  warning.type = EventType::kWarning;
  warning.state = store::JobState::kRunning;
  warning.step = failed_new.back();
  warning.message = absl::StrCat(
      "the checkpoint record(s) at step(s) ", absl::StrJoin(failed_new, ","),
      " could not be written to the store yet (", first_error.message(), "); retrying");
  events->push_back(std::move(warning));
}

void Scheduler::RecordEnd(UnrecordedEnd end) {
  absl::Status recorded = TryRecordEnd(end);
  if (recorded.ok()) return;
  const std::string id = end.job.id;
  LogJobError(
      id, absl::StrCat("could not record that the job ended ", store::JobStateName(end.job.state),
                       "; retrying on every flush: ", recorded.ToString()));
  end.error = std::string(recorded.message());
  {
    absl::MutexLock lock(&mu_);
    ending_[id] = store::JobStateName(end.job.state);
  }
  unrecorded_[id] = std::move(end);
}

absl::Status Scheduler::TryRecordEnd(UnrecordedEnd& end) {
  // Checkpoints first, so that a job recorded as ended always has its checkpoints listed. Both
  // writes are idempotent, so a retry after a partial success repeats them safely.
  for (const store::CheckpointRecord& checkpoint : end.checkpoints) {
    absl::Status recorded = store_->InsertCheckpoint(checkpoint);
    if (!recorded.ok()) return recorded;
  }
  for (int64_t step : end.deletions) {
    absl::Status deleted = store_->DeleteCheckpoint(end.job.id, step);
    if (!deleted.ok() && !absl::IsNotFound(deleted)) return deleted;
  }
  return events_.Record(end.job, end.events).status();
}

void Scheduler::RetryUnrecorded() {
  for (auto it = unrecorded_.begin(); it != unrecorded_.end();) {
    absl::Status recorded = TryRecordEnd(it->second);
    if (!recorded.ok()) {
      it->second.error = std::string(recorded.message());
      ++it;
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      ending_.erase(it->first);
    }
    it = unrecorded_.erase(it);
  }
}

}  // namespace attune::scheduler
