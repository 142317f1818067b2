// How a job's run ended, as its record and events say it: succeeded, failed (with an error
// event), stopped for a cancel, pause, preemption or shutdown, or, for a crash that the job's
// max_retries allows, queued again. Internal to the scheduler.
#ifndef ATTUNE_SERVER_SCHEDULER_JOB_END_H_
#define ATTUNE_SERVER_SCHEDULER_JOB_END_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/engine/trainer.h"
#include "server/scheduler/job_observer.h"
#include "server/store/records.h"

namespace attune::scheduler {

// Whether a run that ended with `status` crashed, as opposed to failing for its input: the
// codes the engine gives what escapes it as an exception (engine/exception_status.h: INTERNAL,
// RESOURCE_EXHAUSTED) and the machine's other transient ones (UNKNOWN, UNAVAILABLE, ABORTED,
// DATA_LOSS). INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION and the rest are the input's.
bool IsCrash(const absl::Status& status);

// The wait before retry `retry` (1-based) of a crashed job: `base` doubled per earlier retry,
// at most an hour.
absl::Duration CrashBackoff(absl::Duration base, int64_t retry);

// The record of the checkpoint a run ended with when the store does not have it (no step in
// `recorded_steps`): an attempt that crashed after writing a checkpoint but before it was
// reported leaves it unrecorded, and the next attempt, resuming from it, may write no newer one
// (it resumed at the end). nullopt when there is nothing to add.
std::optional<store::CheckpointRecord> UnrecordedFinalCheckpoint(
    const absl::StatusOr<engine::TrainResult>& result, const std::string& job_id,
    const std::vector<int64_t>& recorded_steps, int64_t now_us);

// Sets `job`'s end from the runner's result and the reason it was asked to stop, adds an error
// event for a failure, and returns the final state event's message. A crash (`crashed`: the
// runner threw, or its status IsCrash) with retries left (job->crashed_attempts < spec.max_retries)
// counts the attempt, adds a warning naming the crash and leaves the job QUEUED; the caller
// re-queues it after CrashBackoff(backoff, the new count).
std::string EndJob(const absl::StatusOr<engine::TrainResult>& result, StopReason stop,
                   const std::string& preempted_by, bool crashed, absl::Duration backoff,
                   int64_t now_us, store::Job* job, std::vector<store::JobEvent>* events);

}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_JOB_END_H_
