// Small helpers the scheduler's files share: building state-change events, folding a job's
// progress into its record, and logging store failures with the job's id. Internal to the
// scheduler.
#ifndef ATTUNE_SERVER_SCHEDULER_SCHEDULER_EVENTS_H_
#define ATTUNE_SERVER_SCHEDULER_SCHEDULER_EVENTS_H_

#include <cstdint>
#include <string>

#include "server/scheduler/job_observer.h"
#include "server/store/records.h"

namespace attune::scheduler {

// A kStateChanged event for `job` in its current state, at `now_us`, saying `message`.
store::JobEvent StateEvent(const store::Job& job, int64_t now_us, std::string message);

// Folds what the observer collected into the job record.
void ApplyProgress(const JobProgress& progress, store::Job* job);

// "attuned: scheduler: job <id>: <message>" on stderr.
void LogJobError(const std::string& job_id, const std::string& message);

}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_SCHEDULER_EVENTS_H_
