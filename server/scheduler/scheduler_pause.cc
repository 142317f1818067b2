// PauseJob and ResumeJob. A paused job leaves queue_ (or, running, stops at a checkpoint and
// frees its devices) and waits in paused_ with its QueuedJob, whose order is its place; resumed,
// it goes back into queue_ with that order and continues from its checkpoint like a job
// restarted after a shutdown.
#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/scheduler/job_observer.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/scheduler_events.h"

namespace attune::scheduler {

using store::Job;
using store::JobState;

absl::StatusOr<Job> Scheduler::Pause(const std::string& id) {
  std::optional<QueuedJob> queued;
  bool running = false;
  bool paused = false;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return absl::UnavailableError("the server is shutting down");
    auto it =
        std::find_if(queue_.begin(), queue_.end(), [&](const QueuedJob& q) { return q.id == id; });
    if (it != queue_.end()) {
      queued = *it;
      queue_.erase(it);
    } else if (auto r = running_.find(id); r != running_.end()) {
      running = true;
      JobObserver* observer = r->second->observer.get();
      const StopReason before = observer->stop_reason();
      if (before == StopReason::kNone || before == StopReason::kPreempt) {
        observer->RequestStop(StopReason::kPause);
        observer->OnWarning("pause requested; checkpointing after this step");
      } else if (observer->stop_reason() == StopReason::kCancel) {
        return absl::FailedPreconditionError(
            absl::StrCat("job ", id, " is being cancelled; it cannot be paused"));
      }
    } else {
      paused = paused_.count(id) > 0;
    }
  }
  if (queued.has_value()) return PauseQueued(*std::move(queued));
  ASSIGN_OR_RETURN(Job job, store_->GetJob(id));
  if (running || paused) return job;
  return absl::FailedPreconditionError(absl::StrCat("job ", id, " is ",
                                                    store::JobStateName(job.state),
                                                    "; only QUEUED or RUNNING jobs can be paused"));
}

absl::StatusOr<Job> Scheduler::PauseQueued(QueuedJob queued) {
  absl::StatusOr<Job> job = store_->GetJob(queued.id);
  absl::Status written = job.status();
  if (job.ok()) {
    job->state = JobState::kPaused;
    written = events_.Record(*job, {StateEvent(*job, NowUs(), "paused while queued")}).status();
  }
  absl::MutexLock lock(&mu_);
  if (!written.ok()) {
    LogJobError(queued.id, absl::StrCat("could not record the pause: ", written.ToString()));
    queue_.push_back(std::move(queued));  // it is still QUEUED in the store
    dispatch_pending_ = true;
    dispatch_cv_.SignalAll();
    return written;
  }
  paused_[queued.id] = std::move(queued);
  return job;
}

absl::StatusOr<Job> Scheduler::Resume(const std::string& id) {
  std::optional<QueuedJob> queued;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return absl::UnavailableError("the server is shutting down");
    if (auto p = paused_.find(id); p != paused_.end() && ending_.count(id) == 0) {
      queued = std::move(p->second);
      paused_.erase(p);
    }
  }
  ASSIGN_OR_RETURN(Job job, store_->GetJob(id));
  if (!queued.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", id, " is ", store::JobStateName(job.state),
        job.state == JobState::kPaused ? " but its pause is not recorded yet; try again"
                                       : "; only PAUSED jobs can be resumed"));
  }
  job.state = JobState::kQueued;
  absl::Status written =
      events_.Record(job, {StateEvent(job, NowUs(), "resumed; queued at its place")}).status();
  absl::MutexLock lock(&mu_);
  if (!written.ok()) {
    paused_[id] = *std::move(queued);  // it is still PAUSED in the store
    return written;
  }
  queued->not_before = absl::InfinitePast();
  queued->quota_noted = false;
  queue_.push_back(*std::move(queued));
  dispatch_pending_ = true;
  dispatch_cv_.SignalAll();
  return job;
}

}  // namespace attune::scheduler
