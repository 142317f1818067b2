// Priority preemption (SchedulerOptions::preemption). When the dispatcher has started every job
// that fits, the first queued job left (highest priority, then fair share and submission) may
// take the slots of running jobs of lower priority: they are asked to stop after their step
// (StopReason::kPreempt), checkpoint, and FinishJob puts each back into queue_ with its order,
// so it resumes from its checkpoint at its place. The fewest jobs are stopped: only as many as
// free the slots the waiting job needs (a job of N ranks needs N; the slots already free count),
// lowest priority first, and none when even all of them would not make it fit. While those
// stop, no other job is asked, and TakeStartable keeps the slots freed first for the waiting job.
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/scheduler/job_observer.h"
#include "server/scheduler/scheduler.h"

namespace attune::scheduler {

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
  std::vector<RunningJob*> candidates;
  for (auto& [id, running] : running_) {
    const StopReason stop = running->observer->stop_reason();
    if (stop == StopReason::kPreempt) return;  // slots are being freed already
    if (!running->started || stop != StopReason::kNone) continue;
    if (running->queued.priority >= waiting->priority) continue;
    if (now - running->queued.preempted_at < options_.preemption_grace) continue;
    const bool frees_a_usable_slot =
        std::any_of(running->slots.begin(), running->slots.end(),
                    [&](int slot) { return devices_.Suits(slot, waiting->gpus, waiting->ranks); });
    if (frees_a_usable_slot) candidates.push_back(running.get());
  }
  // The lowest priority goes first; among equals, the one started last.
  std::sort(candidates.begin(), candidates.end(), [](RunningJob* a, RunningJob* b) {
    if (a->queued.priority != b->queued.priority) return a->queued.priority < b->queued.priority;
    return a->job.started_us > b->job.started_us;
  });
  // Whether the waiting job fits once `victims` have given their slots back.
  auto fits_without = [&](const std::vector<RunningJob*>& victims) {
    DeviceInventory after = devices_;
    for (RunningJob* victim : victims) {
      if (victim->base_host.empty()) after.Release(victim->slots);  // a guest frees none
    }
    return after.CanAcquire(waiting->gpus, waiting->ranks);
  };
  std::vector<RunningJob*> victims;
  for (RunningJob* candidate : candidates) {
    victims.push_back(candidate);
    if (fits_without(victims)) break;
  }
  if (victims.empty() || !fits_without(victims)) return;
  // Spare any victim the others make enough room without, the higher priorities first.
  for (size_t i = victims.size(); i-- > 0;) {
    std::vector<RunningJob*> fewer = victims;
    fewer.erase(fewer.begin() + static_cast<std::ptrdiff_t>(i));
    if (!fewer.empty() && fits_without(fewer)) victims = std::move(fewer);
  }
  for (RunningJob* victim : victims) {
    victim->preempted_by = absl::StrCat("job ", waiting->id, " (priority ", waiting->priority, ")");
    victim->observer->RequestStop(StopReason::kPreempt);
    victim->observer->OnWarning(
        absl::StrCat("preempted by ", victim->preempted_by, "; checkpointing after this step"));
  }
}

}  // namespace attune::scheduler
