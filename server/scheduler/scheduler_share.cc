// Shared-base groups in the scheduler (SchedulerOptions::share_base): which running job's slot a
// queued job may train on, and who holds a shared slot when a job on it ends.
#include "absl/strings/str_cat.h"
#include "server/scheduler/job_observer.h"
#include "server/scheduler/scheduler.h"

namespace attune::scheduler {

Scheduler::RunningJob* Scheduler::ShareHostLocked(const QueuedJob& queued, std::string* refused) {
  if (!options_.share_base || !options_.shares_device || queued.ranks > 1 || queued.gpus > 1) {
    return nullptr;
  }
  for (auto& [id, running] : running_) {
    RunningJob* r = running.get();
    if (r->queued.ranks > 1 || r->slots.size() != 1) continue;
    if (r->observer->stop_reason() != StopReason::kNone) continue;  // about to leave
    if (!devices_.Suits(r->slots[0], queued.gpus)) continue;        // e.g. a GPU job, a CPU slot
    const std::string& device = devices_.name(r->slots[0]);
    if (!options_.shares_device(device)) continue;
    const std::string why = options_.share_base(queued.train, r->queued.train, device);
    if (why.empty()) return r;
    if (refused->empty()) *refused = absl::StrCat("does not share job ", id, "'s base: ", why);
  }
  return nullptr;
}

void Scheduler::ReleaseSlotsLocked(RunningJob* running) {
  if (!running->base_host.empty()) return;  // a guest on another job's slots holds none
  // The jobs still training on these slots: the first becomes their holder.
  RunningJob* heir = nullptr;
  for (auto& [id, r] : running_) {
    if (r->base_host != running->queued.id) continue;
    if (heir == nullptr) {
      heir = r.get();
      heir->base_host.clear();
    } else {
      r->base_host = heir->queued.id;
    }
  }
  if (heir == nullptr) devices_.Release(running->slots);
}

}  // namespace attune::scheduler
