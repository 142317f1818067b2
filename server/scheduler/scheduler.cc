// The scheduler's public operations: creation, submission, lookup, cancellation, statistics and
// shutdown. Dispatching and job threads are in scheduler_dispatch.cc, progress publishing and
// the retries of failed writes in scheduler_progress.cc.
#include "server/scheduler/scheduler.h"

#include <algorithm>
#include <exception>
#include <iostream>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "server/scheduler/job_observer.h"
#include "server/scheduler/memory_admission.h"
#include "server/scheduler/scheduler_events.h"

namespace attune::scheduler {
namespace {

using store::Job;
using store::JobEvent;
using store::JobState;

absl::Status ValidateOptions(const SchedulerOptions& options) {
  if (options.artifacts_dir.empty()) {
    return absl::InvalidArgumentError("artifacts_dir: required");
  }
  if (options.max_queued < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queued: ", options.max_queued, " must be >= 1"));
  }
  if (options.event_flush_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("event_flush_interval: must be > 0");
  }
  if (options.retry_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("retry_interval: must be > 0");
  }
  return absl::OkStatus();
}

// "a CPU slot", "2 CPU slots", "one GPU", "2 GPUs": what a job waits for.
std::string DeviceWanted(int gpus, int ranks) {
  if (gpus == 0) return ranks <= 1 ? "a CPU slot" : absl::StrCat(ranks, " CPU slots");
  return gpus == 1 ? "one GPU" : absl::StrCat(gpus, " GPUs");
}

// The processes a job runs: its ranks, or for a spec stored before ranks existed (0), one per
// GPU, or 1 on the CPU.
int RanksOf(const JobSpec& spec) {
  if (spec.ranks > 0) return spec.ranks;
  return spec.gpus > 0 ? spec.gpus : 1;
}

// Marks `job`, read with Job::unreadable set, FAILED in the store with the reason and logs it
// with its id. When even that write fails, reads still report the job FAILED (store.h), and the
// next start tries again.
void FailUnreadableAtStart(EventHub& events, const Job& job, int64_t now_us) {
  LogJobError(job.id, job.error);
  Job failed;
  failed.id = job.id;
  failed.state = JobState::kFailed;
  JobEvent error_event = StateEvent(failed, now_us, job.error);
  error_event.type = store::EventType::kError;
  absl::Status written = events
                             .RecordFailure(job.id, job.error, now_us,
                                            {std::move(error_event),
                                             StateEvent(failed, now_us, "failed: " + job.error)})
                             .status();
  if (!written.ok()) {
    LogJobError(job.id, absl::StrCat("could not record the failure: ", written.ToString()));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(const SchedulerOptions& options,
                                                             store::Store* store,
                                                             JobRunner* runner) {
  RETURN_IF_ERROR(ValidateOptions(options));
  ASSIGN_OR_RETURN(DeviceInventory devices,
                   DeviceInventory::Create(options.devices, options.slots_per_device));
  if (store == nullptr || runner == nullptr) {
    return absl::InvalidArgumentError("Scheduler::Create: store and runner are required");
  }
  std::unique_ptr<Scheduler> scheduler(new Scheduler(options, std::move(devices), store, runner));
  RETURN_IF_ERROR(
      scheduler->events_
          .RequeueRunning("server restarted; the job will resume from its last checkpoint",
                          scheduler->NowUs())
          .status());
  scheduler->RecoverDeletions();
  RETURN_IF_ERROR(scheduler->LoadQueue());
  Scheduler* self = scheduler.get();
  scheduler->dispatcher_ = std::thread([self] { self->DispatchLoop(); });
  scheduler->publisher_ = std::thread([self] { self->PublishLoop(); });
  return scheduler;
}

Scheduler::Scheduler(const SchedulerOptions& options, DeviceInventory devices, store::Store* store,
                     JobRunner* runner)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : RealClock()),
      store_(store),
      runner_(runner),
      gpu_count_(devices.gpu_count()),
      cpu_slots_(devices.cpu_slots()),
      events_(store),
      devices_(std::move(devices)) {}

Scheduler::~Scheduler() { Shutdown(); }

absl::Status Scheduler::LoadQueue() {
  // Queued and paused jobs in one submission order, so that a paused job resumed after a
  // restart still goes back to its place.
  ASSIGN_OR_RETURN(std::vector<Job> waiting,
                   store_->JobsInStates({JobState::kQueued, JobState::kPaused}));
  std::vector<QueuedJob> loaded;
  std::map<std::string, QueuedJob> paused;
  int64_t order = 0;  // next_order_ before any submission
  for (Job& job : waiting) {
    if (!job.unreadable.empty()) {
      FailUnreadableAtStart(events_, job, NowUs());
      continue;
    }
    QueuedJob queued{job.spec.priority, order++, job.id, job.spec.gpus, RanksOf(job.spec)};
    queued.owner = job.owner;
    queued.train = job.spec.train;
    if (job.state == JobState::kPaused) {
      paused[job.id] = std::move(queued);
      continue;
    }
    if (job.spec.gpus > gpu_count_ ||
        (job.spec.gpus == 0 && queued.ranks > 1 && queued.ranks > cpu_slots_)) {
      job.state = JobState::kFailed;
      job.finished_us = NowUs();
      job.error = job.spec.gpus > 0
                      ? absl::StrCat("gpus: the job needs ", job.spec.gpus,
                                     " GPU(s) but this server now has ", gpu_count_)
                      : absl::StrCat("ranks: the job needs ", queued.ranks,
                                     " CPU slots but this server now has ", cpu_slots_);
      RETURN_IF_ERROR(events_.Record(job, {StateEvent(job, NowUs(), job.error)}).status());
      continue;
    }
    loaded.push_back(std::move(queued));
  }
  absl::MutexLock lock(&mu_);
  queue_ = std::move(loaded);
  paused_ = std::move(paused);
  next_order_ = order;
  return absl::OkStatus();
}

absl::StatusOr<engine::SpecCheck> Scheduler::CheckFiles(const TrainSpec& spec) {
  try {
    return runner_->Check(spec);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        "checking the job's files ran out of memory; the model or data may be too large");
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("checking the job's files failed: ", e.what()));
  }
}

absl::StatusOr<Job> Scheduler::Submit(const JobSpec& requested, const std::string& request_id,
                                      const std::string& owner) {
  JobSpec spec = requested;
  ApplyJobSpecDefaults(&spec);
  RETURN_IF_ERROR(ValidateJobSpecFields(spec));
  RETURN_IF_ERROR(ResolveDevices(&spec));
  if (!request_id.empty()) {
    absl::StatusOr<Job> existing = store_->FindByRequestId(owner, request_id);
    JobSpec stored = existing.ok() ? existing->spec : JobSpec();
    // A job stored before JobSpec.ranks existed has 0 there: the ranks it ran with.
    if (stored.ranks == 0) stored.ranks = stored.gpus > 0 ? stored.gpus : 1;
    if (existing.ok() && JobSpecToJson(stored) != JobSpecToJson(spec)) {
      return absl::AlreadyExistsError(
          absl::StrCat("request_id: '", request_id, "' was already used for job ", existing->id,
                       " with a different spec; use a new request_id for a new job"));
    }
    if (existing.ok() || !absl::IsNotFound(existing.status())) return existing;
  }
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return absl::UnavailableError("the server is shutting down");
  }
  ASSIGN_OR_RETURN(engine::SpecCheck check, CheckFiles(spec.train));
  RETURN_IF_ERROR(AdmitMemory(spec.train, check.estimated_memory_bytes,
                              spec.gpus == 0 ? AvailableHostMemory() : std::nullopt, spec.ranks));

  Job job;
  job.id = store::NewJobId();
  job.request_id = request_id;
  job.owner = owner;
  job.spec = spec;
  job.state = JobState::kQueued;
  job.created_us = NowUs();
  job.output_dir = absl::StrCat(options_.artifacts_dir, "/jobs/", job.id);
  job.total_parameters = check.total_parameters;
  job.trainable_parameters = check.trainable_parameters;
  job.base_model_bytes = check.base_model_bytes;
  return InsertQueued(std::move(job));
}

absl::StatusOr<Job> Scheduler::InsertQueued(Job job) {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return absl::UnavailableError("the server is shutting down");
    const int waiting = static_cast<int>(queue_.size()) + pending_submits_;
    if (waiting >= options_.max_queued) {
      return absl::ResourceExhaustedError(absl::StrCat("queue: ", waiting,
                                                       " jobs are already queued (max_queued ",
                                                       options_.max_queued, "); retry later"));
    }
    ++pending_submits_;
  }
  absl::StatusOr<Job> inserted = events_.Insert(
      job, {StateEvent(job, NowUs(),
                       absl::StrCat("queued for ", DeviceWanted(job.spec.gpus, job.spec.ranks)))});
  absl::MutexLock lock(&mu_);
  --pending_submits_;
  if (absl::IsAlreadyExists(inserted.status()) && !job.request_id.empty()) {
    return store_->FindByRequestId(job.owner, job.request_id);  // a concurrent retry won
  }
  if (!inserted.ok()) return inserted.status();
  QueuedJob queued{job.spec.priority, next_order_++, job.id, job.spec.gpus, RanksOf(job.spec)};
  queued.owner = job.owner;
  queued.train = job.spec.train;
  queue_.push_back(std::move(queued));
  dispatch_pending_ = true;
  dispatch_cv_.SignalAll();
  return inserted;
}

absl::StatusOr<Job> Scheduler::Get(const std::string& id) { return store_->GetJob(id); }

absl::StatusOr<store::JobPage> Scheduler::List(const store::ListJobsQuery& query) {
  return store_->ListJobs(query);
}

absl::StatusOr<Job> Scheduler::Cancel(const std::string& id) {
  std::optional<QueuedJob> queued;
  std::optional<std::string> ending;
  bool running = false;
  bool paused = false;
  {
    absl::MutexLock lock(&mu_);
    auto it =
        std::find_if(queue_.begin(), queue_.end(), [&](const QueuedJob& q) { return q.id == id; });
    if (it != queue_.end()) {
      queued = *it;
      queue_.erase(it);
    } else if (auto p = paused_.find(id); p != paused_.end()) {
      queued = p->second;
      paused = true;
      paused_.erase(p);
    } else if (auto r = running_.find(id); r != running_.end()) {
      running = true;
      JobObserver* observer = r->second->observer.get();
      const StopReason before = observer->stop_reason();
      if (before != StopReason::kCancel && before != StopReason::kShutdown) {
        observer->RequestStop(StopReason::kCancel);
        observer->OnWarning("cancellation requested; stopping after this step");
      }
    } else if (auto e = ending_.find(id); e != ending_.end()) {
      ending = e->second;
    }
  }
  if (queued.has_value()) return CancelQueued(*std::move(queued), paused);
  if (ending.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", id, " has already ended (", *ending,
        ") but the store has not recorded it yet; the write is retried until it succeeds"));
  }
  ASSIGN_OR_RETURN(Job job, store_->GetJob(id));
  if (running) return job;
  if (store::IsTerminal(job.state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " already ", store::JobStateName(job.state),
                     "; only QUEUED or RUNNING jobs can be cancelled"));
  }
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return absl::UnavailableError("the server is shutting down");
  return absl::InternalError(absl::StrCat("job ", id, " is ", store::JobStateName(job.state),
                                          " in the store but not known to the scheduler"));
}

absl::StatusOr<Job> Scheduler::CancelQueued(QueuedJob queued, bool paused) {
  absl::StatusOr<Job> job = store_->GetJob(queued.id);
  absl::Status written = job.status();
  if (job.ok()) {
    job->state = JobState::kCancelled;
    job->finished_us = NowUs();
    const char* message = paused ? "cancelled while paused" : "cancelled while queued";
    written = events_.Record(*job, {StateEvent(*job, NowUs(), message)}).status();
  }
  if (!written.ok()) {
    LogJobError(queued.id, absl::StrCat("could not record the cancellation: ", written.ToString()));
    absl::MutexLock lock(&mu_);
    if (paused) {
      paused_[queued.id] = std::move(queued);  // it is still PAUSED in the store
      return written;
    }
    queue_.push_back(std::move(queued));  // it is still QUEUED in the store
    dispatch_pending_ = true;
    dispatch_cv_.SignalAll();
    return written;
  }
  return job;
}

absl::StatusOr<std::vector<JobEvent>> Scheduler::WaitForEvents(const std::string& job_id,
                                                               int64_t after_sequence,
                                                               int max_events,
                                                               absl::Duration timeout) {
  return events_.Wait(job_id, after_sequence, max_events, timeout);
}

void Scheduler::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      while (!shut_down_) dispatch_cv_.Wait(&mu_);
      return;
    }
    shutting_down_ = true;
    for (auto& [id, running] : running_) running->observer->RequestStop(StopReason::kShutdown);
    dispatch_cv_.SignalAll();
  }
  if (dispatcher_.joinable()) dispatcher_.join();
  {
    absl::MutexLock lock(&mu_);
    while (!running_.empty()) dispatch_cv_.Wait(&mu_);
  }
  JoinFinished();
  {
    absl::MutexLock lock(&mu_);
    publisher_stop_ = true;
    publish_cv_.SignalAll();
  }
  if (publisher_.joinable()) publisher_.join();
  {
    absl::MutexLock flush_lock(&flush_mu_);
    RetryUnrecorded();  // a last try; what still fails stays RUNNING and is requeued at start
  }
  events_.Close();
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  dispatch_cv_.SignalAll();
}

absl::StatusOr<SchedulerStats> Scheduler::Stats() {
  SchedulerStats stats;
  ASSIGN_OR_RETURN(stats.jobs_by_state, store_->CountJobsByState());
  {
    absl::MutexLock lock(&mu_);
    stats.queue_length = static_cast<int64_t>(queue_.size());
    stats.dispatcher_idle = dispatcher_idle_ && !dispatch_pending_;
    stats.unrecorded_jobs = static_cast<int64_t>(ending_.size());
    for (const auto& [id, running] : running_) {
      stats.running.push_back(RunningJobStats{id, running->job.devices, running->job.started_us,
                                              running->job.last_step, running->job.total_steps,
                                              running->job.latest_step, running->job.latest_eval});
    }
    for (int slot = 0; slot < devices_.size(); ++slot) {
      stats.devices.push_back(
          DeviceStats{devices_.name(slot), devices_.slots_per_device(), devices_.busy(slot)});
    }
  }
  for (RunningJobStats& job : stats.running) {
    absl::StatusOr<int64_t> bytes = ArtifactBytes(job.job_id);
    if (bytes.ok()) job.artifact_bytes = *bytes;
  }
  return stats;
}

}  // namespace attune::scheduler
