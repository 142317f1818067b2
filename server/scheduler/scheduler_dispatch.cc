// The scheduler's dispatcher and job threads: taking queued jobs that fit, recording their start,
// running them, and recording how they ended.
#include <algorithm>
#include <exception>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/scheduler/job_end.h"
#include "server/scheduler/job_observer.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/scheduler_events.h"

namespace attune::scheduler {
namespace {

using store::EventType;
using store::Job;
using store::JobEvent;
using store::JobState;

// The warning that a queued job waits for its tenant's limit.
JobEvent WaitingEvent(const std::string& id, int64_t now_us, std::string message) {
  JobEvent event;
  event.job_id = id;
  event.time_us = now_us;
  event.type = EventType::kWarning;
  event.state = JobState::kQueued;
  event.message = std::move(message);
  return event;
}

// Why `owner` may not start a job needing `gpus` GPUs now; "" when it may.
std::string OverLimit(const std::string& owner, const TenantLimits& limits, int64_t running,
                      int64_t gpus_held, int gpus) {
  if (limits.max_running_jobs > 0 && running >= limits.max_running_jobs) {
    return absl::StrCat("waiting: tenant '", owner, "' runs ", running, " job(s), its max_jobs is ",
                        limits.max_running_jobs);
  }
  if (limits.max_gpus > 0 && gpus > 0 && gpus_held + gpus > limits.max_gpus) {
    return absl::StrCat("waiting: tenant '", owner, "' holds ", gpus_held,
                        " GPU(s), its max_gpus is ", limits.max_gpus);
  }
  return "";
}

template <typename T>
void Append(std::vector<T>* to, std::vector<T> from) {
  to->insert(to->end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

}  // namespace

void Scheduler::DispatchLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      AwaitDispatch();
      if (shutting_down_) return;
      dispatch_pending_ = false;
    }
    DispatchOnce();
    JoinFinished();
  }
}

void Scheduler::AwaitDispatch() {
  dispatcher_idle_ = true;
  while (!dispatch_pending_ && !shutting_down_) {
    absl::Time retry = absl::InfiniteFuture();
    for (const QueuedJob& queued : queue_) {
      if (queued.not_before != absl::InfinitePast()) retry = std::min(retry, queued.not_before);
    }
    if (retry == absl::InfiniteFuture()) {
      dispatch_cv_.Wait(&mu_);
    } else if (absl::Now() >= retry) {
      break;
    } else {
      dispatch_cv_.WaitWithDeadline(&mu_, retry);
    }
  }
  dispatcher_idle_ = false;
}

void Scheduler::DispatchOnce() {
  std::vector<RunningJob*> started;
  std::vector<JobEvent> waiting;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    started = TakeStartable(&waiting);
    if (options_.preemption) PreemptForLocked();
  }
  if (!waiting.empty()) {
    // Only the explanation is lost when this fails: the jobs stay queued either way.
    absl::Status appended = events_.Append(std::move(waiting)).status();
    if (!appended.ok()) std::cerr << "attuned: waiting events not recorded: " << appended << "\n";
  }
  for (RunningJob* running : started) {
    if (!RecordStart(running)) continue;
    absl::MutexLock lock(&mu_);  // FinishJob takes mu_ before touching `thread`
    running->started = true;
    running->thread = std::thread([this, running, job = running->job] { RunJob(running, job); });
  }
}

void Scheduler::OrderQueue() {
  std::sort(queue_.begin(), queue_.end(), [](const QueuedJob& a, const QueuedJob& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    return a.order < b.order;
  });
  std::set<std::string> busy;
  for (const QueuedJob& queued : queue_) busy.insert(queued.owner);
  for (const auto& [id, running] : running_) busy.insert(running->queued.owner);
  // Owners busy before keep their turns; one that was not starts at the least-served of them.
  int64_t floor = -1;
  for (const std::string& owner : busy) {
    if (busy_owners_.count(owner) == 0) continue;
    const int64_t turns = owner_turns_[owner];
    floor = floor < 0 ? turns : std::min(floor, turns);
  }
  for (const std::string& owner : busy) {
    if (busy_owners_.count(owner) == 0 && floor >= 0) {
      owner_turns_[owner] = std::max(owner_turns_[owner], floor);
    }
  }
  busy_owners_ = std::move(busy);
  std::map<std::pair<int, std::string>, int64_t> seen;  // (priority, owner) -> waiting so far
  for (QueuedJob& queued : queue_) {
    queued.share_rank = owner_turns_[queued.owner] + seen[{queued.priority, queued.owner}]++;
    const auto last = owner_last_start_.find(queued.owner);
    queued.share_tiebreak = last == owner_last_start_.end() ? -1 : last->second;
  }
  std::stable_sort(queue_.begin(), queue_.end(), [](const QueuedJob& a, const QueuedJob& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    if (a.share_rank != b.share_rank) return a.share_rank < b.share_rank;
    return a.share_tiebreak < b.share_tiebreak;  // then submission order (stable)
  });
}

std::vector<Scheduler::RunningJob*> Scheduler::TakeStartable(std::vector<JobEvent>* waiting) {
  OrderQueue();
  std::map<std::string, int64_t> running_by_owner, gpus_by_owner;
  for (const auto& [id, running] : running_) {
    ++running_by_owner[running->queued.owner];
    gpus_by_owner[running->queued.owner] += running->queued.gpus;
  }
  // While running jobs stop to make room for a job of several slots (PreemptForLocked), the
  // slots freed first are kept for it: no job of lower priority back-fills them.
  bool making_room = false;
  for (const auto& [id, running] : running_) {
    if (running->observer->stop_reason() == StopReason::kPreempt) making_room = true;
  }
  int hold_below = std::numeric_limits<int>::min();  // priorities below this wait
  const absl::Time now = absl::Now();
  std::vector<RunningJob*> started;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->priority < hold_below) {
      ++it;
      continue;
    }
    const TenantLimits limits =
        options_.tenant_limits ? options_.tenant_limits(it->owner) : TenantLimits{};
    const std::string over = OverLimit(it->owner, limits, running_by_owner[it->owner],
                                       gpus_by_owner[it->owner], it->gpus);
    if (!over.empty()) {
      if (!it->quota_noted) waiting->push_back(WaitingEvent(it->id, NowUs(), over));
      it->quota_noted = true;
      ++it;
      continue;
    }
    std::vector<int> slots =
        it->not_before > now ? std::vector<int>{} : devices_.Acquire(it->gpus, it->ranks);
    std::string refused;
    RunningJob* host =
        slots.empty() && it->not_before <= now ? ShareHostLocked(*it, &refused) : nullptr;
    if (host != nullptr) slots = host->slots;
    if (!refused.empty() && !it->share_noted) {
      waiting->push_back(WaitingEvent(it->id, NowUs(), "waits for a slot: " + refused));
      it->share_noted = true;
    }
    if (slots.empty()) {
      if (making_room && it->not_before <= now && std::max(it->gpus, it->ranks) > 1) {
        hold_below = std::max(hold_below, it->priority);
      }
      ++it;
      continue;
    }
    ++running_by_owner[it->owner];
    gpus_by_owner[it->owner] += it->gpus;
    ++owner_turns_[it->owner];
    owner_last_start_[it->owner] = starts_++;
    auto running = std::make_unique<RunningJob>();
    running->queued = *it;
    running->job.id = it->id;
    running->slots = std::move(slots);
    if (host != nullptr) running->base_host = host->queued.id;
    Clock* clock = clock_;
    running->observer = std::make_unique<JobObserver>(it->id, [clock] { return clock->NowUs(); });
    started.push_back(running.get());
    running_[it->id] = std::move(running);
    it = queue_.erase(it);
  }
  return started;
}

bool Scheduler::RecordStart(RunningJob* running) {
  const std::string& id = running->queued.id;
  absl::StatusOr<Job> job = store_->GetJob(id);
  if (!job.ok() || !job->unreadable.empty()) {
    FailUnreadable(running, job.ok() ? absl::DataLossError(job->unreadable) : job.status());
    return false;
  }
  job->state = JobState::kRunning;
  job->started_us = NowUs();
  job->finished_us = 0;
  job->error.clear();
  job->devices.clear();
  {
    absl::MutexLock lock(&mu_);
    for (int slot : running->slots) job->devices.push_back(devices_.name(slot));
  }
  JobEvent event =
      StateEvent(*job, NowUs(), absl::StrCat("running on ", absl::StrJoin(job->devices, ",")));
  event.devices = job->devices;
  absl::Status written = events_.Record(*job, {std::move(event)}).status();
  if (!written.ok()) {
    LogJobError(
        id, absl::StrCat("could not record the start (the job stays queued and is tried "
                         "again in ",
                         absl::FormatDuration(options_.retry_interval), "): ", written.ToString()));
    Unstart(running, Requeue::kRetry);
    return false;
  }
  absl::MutexLock lock(&mu_);
  running->job = *std::move(job);
  return true;
}

void Scheduler::FailUnreadable(RunningJob* running, const absl::Status& read_error) {
  const std::string& id = running->queued.id;
  const std::string error =
      absl::StrCat("the job's stored record cannot be read: ", read_error.message());
  LogJobError(id, error);
  Job failed;
  failed.id = id;
  failed.state = JobState::kFailed;
  JobEvent error_event = StateEvent(failed, NowUs(), error);
  error_event.type = EventType::kError;
  absl::Status written =
      events_
          .RecordFailure(id, error, NowUs(),
                         {std::move(error_event), StateEvent(failed, NowUs(), "failed: " + error)})
          .status();
  if (!written.ok()) {
    LogJobError(id, absl::StrCat("could not record the failure either: ", written.ToString()));
  }
  Unstart(running, written.ok() ? Requeue::kNo : Requeue::kRetry);
}

void Scheduler::Unstart(RunningJob* running, Requeue requeue) {
  QueuedJob queued = running->queued;
  const bool cancelled = running->observer->stop_reason() == StopReason::kCancel;
  {
    absl::MutexLock lock(&mu_);
    ReleaseSlotsLocked(running);
    auto it = running_.find(queued.id);
    finished_.push_back(std::move(it->second));  // destroyed by JoinFinished, on this thread
    running_.erase(it);
    if (requeue == Requeue::kRetry && !cancelled) {
      queued.not_before = absl::Now() + options_.retry_interval;
      queue_.push_back(queued);
    }
    dispatch_pending_ = true;  // the freed slots may fit another job
    dispatch_cv_.SignalAll();  // Shutdown waits for running_ to empty
  }
  if (requeue == Requeue::kRetry && cancelled) (void)CancelQueued(std::move(queued));
}

void Scheduler::RunJob(RunningJob* running, Job job) {
  absl::StatusOr<engine::TrainResult> result = absl::InternalError("the job runner did not return");
  try {
    result = runner_->Run(job, job.devices, job.output_dir, running->observer.get());
  } catch (const std::exception& e) {
    result = absl::InternalError(absl::StrCat("training crashed: ", e.what()));
    running->crashed = true;
  } catch (...) {
    result = absl::InternalError("training crashed with an unknown exception");
    running->crashed = true;
  }
  FinishJob(running, result);
}

void Scheduler::FinishJob(RunningJob* running, const absl::StatusOr<engine::TrainResult>& result) {
  absl::MutexLock flush_lock(&flush_mu_);
  JobProgress progress = running->observer->Drain();
  UnrecordedEnd end;
  const StopReason stop = running->observer->stop_reason();
  std::string preempted_by;
  {
    absl::MutexLock lock(&mu_);
    ApplyProgress(progress, &running->job);
    end.job = running->job;
    preempted_by = running->preempted_by;
  }
  end.events = std::move(running->unrecorded_events);
  Append(&end.events, std::move(progress.events));
  const int64_t crashes_before = end.job.crashed_attempts;
  const bool crashed = running->crashed || (!result.ok() && IsCrash(result.status()));
  const std::string message = EndJob(result, stop, preempted_by, crashed, options_.crash_backoff,
                                     NowUs(), &end.job, &end.events);
  const bool retried = end.job.state == JobState::kQueued && !result.ok();
  if (store::IsTerminal(end.job.state)) end.job.finished_us = NowUs();
  end.events.push_back(StateEvent(end.job, NowUs(), message));
  end.checkpoints = std::move(running->unrecorded_checkpoints);
  Append(&end.checkpoints, std::move(progress.checkpoints));
  end.deletions = std::move(running->unrecorded_deletions);
  Append(&end.deletions, std::move(progress.deleted_checkpoint_steps));
  std::vector<int64_t> recorded;
  for (const store::CheckpointRecord& c : end.checkpoints) recorded.push_back(c.step);
  if (absl::StatusOr<std::vector<store::CheckpointRecord>> stored =
          store_->ListCheckpoints(end.job.id);
      stored.ok()) {
    for (const store::CheckpointRecord& c : *stored) recorded.push_back(c.step);
  }
  if (auto final = UnrecordedFinalCheckpoint(result, end.job.id, recorded, NowUs())) {
    end.checkpoints.push_back(*std::move(final));
  }
  const bool paused = end.job.state == JobState::kPaused;
  const bool preempted = stop == StopReason::kPreempt && end.job.state == JobState::kQueued;
  RecordEnd(std::move(end));
  absl::MutexLock lock(&mu_);
  if (paused) paused_[running->queued.id] = running->queued;  // ResumeJob re-queues it
  if (preempted) {  // back at its place; not preempted again within the grace period
    QueuedJob queued = running->queued;
    queued.preempted_at = absl::Now();
    queued.quota_noted = false;
    queue_.push_back(std::move(queued));
  }
  if (retried) {  // back at its place after the backoff
    QueuedJob queued = running->queued;
    queued.not_before = absl::Now() + CrashBackoff(options_.crash_backoff, crashes_before + 1);
    queued.quota_noted = false;
    queue_.push_back(std::move(queued));
  }
  RetireLocked(running);
}

void Scheduler::RetireLocked(RunningJob* running) {
  ReleaseSlotsLocked(running);
  auto it = running_.find(running->queued.id);
  finished_.push_back(std::move(it->second));  // joined and destroyed by the dispatcher
  running_.erase(it);
  dispatch_pending_ = true;
  dispatch_cv_.SignalAll();
}

void Scheduler::JoinFinished() {
  std::list<std::unique_ptr<RunningJob>> finished;
  {
    absl::MutexLock lock(&mu_);
    finished.swap(finished_);
  }
  for (std::unique_ptr<RunningJob>& running : finished) {
    if (running->thread.joinable()) running->thread.join();
  }
}

absl::Status Scheduler::ResolveDevices(JobSpec* spec) const {
  if (spec->gpus == -1) spec->gpus = gpu_count_ > 0 ? 1 : 0;
  if (spec->gpus > gpu_count_) {
    return absl::InvalidArgumentError(
        absl::StrCat("gpus: ", spec->gpus, " requested but this server has ", gpu_count_,
                     " GPU(s) (devices: ", absl::StrJoin(options_.devices, ","), ")"));
  }
  if (spec->gpus > 0) {
    if (spec->ranks == 0) spec->ranks = spec->gpus;
    if (spec->ranks != spec->gpus) {
      return absl::InvalidArgumentError(
          absl::StrCat("ranks: ", spec->ranks, " must equal gpus (", spec->gpus,
                       "): data-parallel training runs one process per GPU"));
    }
    return absl::OkStatus();
  }
  if (spec->ranks == 0) spec->ranks = 1;
  if (spec->ranks > 1 && spec->ranks > cpu_slots_) {
    return absl::InvalidArgumentError(absl::StrCat("ranks: ", spec->ranks, " needs ", spec->ranks,
                                                   " CPU slots but this server has ", cpu_slots_,
                                                   " (attuned --slots-per-device)"));
  }
  return absl::OkStatus();
}

}  // namespace attune::scheduler
