// How a job's run ended, as its record and events say it (job_end.h).
#include "server/scheduler/job_end.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/scheduler/scheduler_events.h"

namespace attune::scheduler {

using store::EventType;
using store::Job;
using store::JobEvent;
using store::JobState;

bool IsCrash(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

absl::Duration CrashBackoff(absl::Duration base, int64_t retry) {
  absl::Duration wait = base;
  for (int64_t i = 1; i < retry && wait < absl::Hours(1); ++i) wait *= 2;
  return std::min(wait, absl::Hours(1));
}

std::optional<store::CheckpointRecord> UnrecordedFinalCheckpoint(
    const absl::StatusOr<engine::TrainResult>& result, const std::string& job_id,
    const std::vector<int64_t>& recorded_steps, int64_t now_us) {
  if (!result.ok() || !result->final_checkpoint.has_value()) return std::nullopt;
  const engine::CheckpointInfo& last = *result->final_checkpoint;
  if (std::find(recorded_steps.begin(), recorded_steps.end(), last.step) != recorded_steps.end()) {
    return std::nullopt;
  }
  return CheckpointRecordOf(job_id, last, now_us);
}

namespace {

// A crashed attempt of `job` that max_retries allows to run again: back to QUEUED with a
// warning naming the crash; returns the state event's message.
std::string RetryCrashed(const absl::Status& crash, absl::Duration wait, int64_t now_us, Job* job,
                         std::vector<JobEvent>* events) {
  job->crashed_attempts += 1;
  job->state = JobState::kQueued;
  JobEvent warning = StateEvent(*job, now_us,
                                absl::StrCat("attempt ", job->crashed_attempts, " crashed at step ",
                                             job->last_step, ": ", crash.message()));
  warning.type = EventType::kWarning;
  events->push_back(std::move(warning));
  return absl::StrCat("queued again after a crash (retry ", job->crashed_attempts, " of ",
                      job->spec.max_retries, ", in ", absl::FormatDuration(wait),
                      "): it resumes from its last checkpoint");
}

}  // namespace

// Sets `job`'s end from the runner's result and the reason it was asked to stop, adds an error
// event for a failure, and returns the final state event's message. A crash (`crashed`: the
// runner threw) with retries left re-queues the job instead (RetryCrashed).
std::string EndJob(const absl::StatusOr<engine::TrainResult>& result, StopReason stop,
                   const std::string& preempted_by, bool crashed, absl::Duration backoff,
                   int64_t now_us, Job* job, std::vector<JobEvent>* events) {
  if (!result.ok() && crashed && stop != StopReason::kCancel &&
      job->crashed_attempts < job->spec.max_retries) {
    return RetryCrashed(result.status(), CrashBackoff(backoff, job->crashed_attempts + 1), now_us,
                        job, events);
  }
  if (!result.ok()) {
    job->state = JobState::kFailed;
    job->error = std::string(result.status().message());
    JobEvent error = StateEvent(*job, now_us, job->error);
    error.type = EventType::kError;
    events->push_back(std::move(error));
    if (crashed) {
      job->crashed_attempts += 1;
      return absl::StrCat("failed: ", job->error, " (", job->crashed_attempts,
                          " crashed attempt(s); max_retries ", job->spec.max_retries, ")");
    }
    return absl::StrCat("failed: ", job->error);
  }
  if (result->total_parameters > 0) job->total_parameters = result->total_parameters;
  if (result->trainable_parameters > 0) job->trainable_parameters = result->trainable_parameters;
  if (result->steps > 0) job->last_step = result->steps;
  if (result->final_checkpoint.has_value()) {
    job->adapter_bytes = result->final_checkpoint->adapter_bytes;
  }
  if (result->outcome == engine::Outcome::kCompleted) {
    job->state = JobState::kSucceeded;
    if (!result->stopped_early.empty()) {
      return absl::StrCat("succeeded after ", job->last_step, " steps: ", result->stopped_early);
    }
    return absl::StrCat("succeeded after ", job->last_step, " steps");
  }
  if (stop == StopReason::kShutdown) {
    job->state = JobState::kQueued;
    return "server shutting down; the job will resume from its last checkpoint";
  }
  if (stop == StopReason::kPreempt) {
    job->state = JobState::kQueued;
    return absl::StrCat("preempted by ", preempted_by, " at step ", job->last_step,
                        "; queued again at its place, it resumes from its checkpoint");
  }
  if (stop == StopReason::kPause) {
    job->state = JobState::kPaused;
    return absl::StrCat("paused at step ", job->last_step,
                        "; ResumeJob continues from its checkpoint");
  }
  if (stop == StopReason::kCancel) {
    job->state = JobState::kCancelled;
    return absl::StrCat("cancelled at step ", job->last_step);
  }
  job->state = JobState::kFailed;
  job->error = "the engine stopped the job without being asked to";
  return absl::StrCat("failed: ", job->error);
}

}  // namespace attune::scheduler
