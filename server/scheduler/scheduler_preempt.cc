// Priority preemption (SchedulerOptions::preemption). When the dispatcher has started every job
// that fits, the first queued job left (highest priority, then fair share and submission) may
// take the slot of one running job of lower priority: that job is asked to stop after its step
// (StopReason::kPreempt), checkpoints, and FinishJob puts it back into queue_ with its order, so
// it resumes from its checkpoint at its place. One job at a time: while one preempted job is
// still stopping, no other is asked, so the fewest jobs are stopped (each job holds one slot).
#include <string>

#include "absl/strings/str_cat.h"
#include "server/scheduler/job_observer.h"
#include "server/scheduler/scheduler.h"

namespace attune::scheduler {
namespace {

bool IsGpuDevice(const std::string& name) { return name.rfind("cuda", 0) == 0; }

}  // namespace

void Scheduler::PreemptForLocked() {
  const absl::Time now = absl::Now();
  const QueuedJob* waiting = nullptr;
  for (const QueuedJob& queued : queue_) {
    if (queued.not_before <= now && !queued.quota_noted) {
      waiting = &queued;
      break;
    }
  }
  if (waiting == nullptr) return;
  RunningJob* victim = nullptr;
  for (auto& [id, running] : running_) {
    const StopReason stop = running->observer->stop_reason();
    if (stop == StopReason::kPreempt) return;  // a slot is being freed already
    if (!running->started || stop != StopReason::kNone) continue;
    if (running->queued.priority >= waiting->priority) continue;
    if (now - running->queued.preempted_at < options_.preemption_grace) continue;
    if (waiting->gpus > 0 && !IsGpuDevice(devices_.name(running->slots.front()))) continue;
    // The lowest priority goes first; among equals, the one started last.
    if (victim == nullptr || running->queued.priority < victim->queued.priority ||
        (running->queued.priority == victim->queued.priority &&
         running->job.started_us > victim->job.started_us)) {
      victim = running.get();
    }
  }
  if (victim == nullptr) return;
  victim->preempted_by = absl::StrCat("job ", waiting->id, " (priority ", waiting->priority, ")");
  victim->observer->RequestStop(StopReason::kPreempt);
  victim->observer->OnWarning(
      absl::StrCat("preempted by ", victim->preempted_by, "; checkpointing after this step"));
}

}  // namespace attune::scheduler
