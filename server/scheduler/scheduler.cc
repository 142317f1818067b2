#include "server/scheduler/scheduler.h"

#include <algorithm>
#include <optional>
#include <exception>
#include <iostream>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "server/scheduler/job_observer.h"

namespace attune::scheduler {
namespace {

using store::EventType;
using store::Job;
using store::JobEvent;
using store::JobState;

int64_t NowUs() { return absl::ToUnixMicros(absl::Now()); }

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
  return absl::OkStatus();
}

JobEvent StateEvent(const Job& job, std::string message) {
  JobEvent event;
  event.job_id = job.id;
  event.time_us = NowUs();
  event.type = EventType::kStateChanged;
  event.state = job.state;
  event.step = job.last_step;
  event.message = std::move(message);
  return event;
}

// Folds what the observer collected into the job record.
void ApplyProgress(const JobProgress& progress, Job* job) {
  if (progress.latest_step.has_value()) job->latest_step = progress.latest_step;
  if (progress.latest_eval.has_value()) job->latest_eval = progress.latest_eval;
  if (progress.last_step > 0) job->last_step = progress.last_step;
  if (progress.total_steps > 0) job->total_steps = progress.total_steps;
  if (progress.adapter_bytes > 0) job->adapter_bytes = progress.adapter_bytes;
  if (progress.setup.has_value()) {
    if (progress.setup->total_parameters > 0)
      job->total_parameters = progress.setup->total_parameters;
    if (progress.setup->trainable_parameters > 0) {
      job->trainable_parameters = progress.setup->trainable_parameters;
    }
    if (progress.setup->base_model_bytes > 0)
      job->base_model_bytes = progress.setup->base_model_bytes;
  }
}

void LogError(const std::string& job_id, const absl::Status& status) {
  std::cerr << "attuned: scheduler: job " << job_id << ": " << status << std::endl;
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
  RETURN_IF_ERROR(store
                      ->RequeueRunningJobs(
                          "server restarted; the job will resume from its last checkpoint", NowUs())
                      .status());
  RETURN_IF_ERROR(scheduler->LoadQueue());
  Scheduler* self = scheduler.get();
  scheduler->dispatcher_ = std::thread([self] { self->DispatchLoop(); });
  scheduler->publisher_ = std::thread([self] { self->PublishLoop(); });
  return scheduler;
}

Scheduler::Scheduler(const SchedulerOptions& options, DeviceInventory devices, store::Store* store,
                     JobRunner* runner)
    : options_(options),
      store_(store),
      runner_(runner),
      devices_(std::move(devices)),
      gpu_count_(devices_.gpu_count()) {}

Scheduler::~Scheduler() { Shutdown(); }

absl::Status Scheduler::LoadQueue() {
  ASSIGN_OR_RETURN(std::vector<Job> queued, store_->JobsInState(JobState::kQueued));
  absl::MutexLock lock(&mu_);
  for (Job& job : queued) {
    if (job.spec.gpus > gpu_count_) {
      job.state = JobState::kFailed;
      job.finished_us = NowUs();
      job.error = absl::StrCat("gpus: the job needs ", job.spec.gpus,
                               " GPU(s) but this server now has ", gpu_count_);
      RETURN_IF_ERROR(WriteJobAndEvents(job, {StateEvent(job, job.error)}).status());
      continue;
    }
    queue_.push_back(QueuedJob{job.spec.priority, job.created_us, job.id, job.spec.gpus});
  }
  return absl::OkStatus();
}

absl::StatusOr<Job> Scheduler::Submit(const JobSpec& spec, const std::string& request_id,
                                      const std::string& owner) {
  RETURN_IF_ERROR(ValidateJobSpecFields(spec));
  if (spec.gpus > gpu_count_) {
    return absl::InvalidArgumentError(
        absl::StrCat("gpus: ", spec.gpus, " requested but this server has ", gpu_count_,
                     " GPU(s) (devices: ", absl::StrJoin(options_.devices, ","), ")"));
  }
  if (!request_id.empty()) {
    absl::StatusOr<Job> existing = store_->FindByRequestId(owner, request_id);
    if (existing.ok() || !absl::IsNotFound(existing.status())) return existing;
  }
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return absl::UnavailableError("the server is shutting down");
  }
  absl::StatusOr<engine::SpecCheck> check;
  try {
    check = runner_->Check(spec.train);
  } catch (const std::exception& e) {
    check = absl::InternalError(absl::StrCat("checking the job failed: ", e.what()));
  }
  RETURN_IF_ERROR(check.status());

  Job job;
  job.request_id = request_id;
  job.owner = owner;
  job.spec = spec;
  job.state = JobState::kQueued;
  job.created_us = NowUs();
  job.total_parameters = check->total_parameters;
  job.trainable_parameters = check->trainable_parameters;
  job.base_model_bytes = check->base_model_bytes;

  absl::MutexLock lock(&mu_);
  if (shutting_down_) return absl::UnavailableError("the server is shutting down");
  if (static_cast<int>(queue_.size()) >= options_.max_queued) {
    return absl::ResourceExhaustedError(absl::StrCat("queue: ", queue_.size(),
                                                     " jobs are already queued (max_queued ",
                                                     options_.max_queued, "); retry later"));
  }
  absl::StatusOr<Job> inserted = store_->InsertJob(job);
  if (absl::IsAlreadyExists(inserted.status()) && !request_id.empty()) {
    return store_->FindByRequestId(owner, request_id);  // a concurrent retry won the race
  }
  RETURN_IF_ERROR(inserted.status());
  inserted->output_dir = absl::StrCat(options_.artifacts_dir, "/jobs/", inserted->id);
  RETURN_IF_ERROR(
      WriteJobAndEvents(*inserted, {StateEvent(*inserted, "queued")}).status());
  queue_.push_back(QueuedJob{spec.priority, inserted->created_us, inserted->id, spec.gpus});
  dispatch_pending_ = true;
  dispatch_cv_.SignalAll();
  NotifyWatchers();
  return inserted;
}

absl::StatusOr<Job> Scheduler::Get(const std::string& id) { return store_->GetJob(id); }

absl::StatusOr<store::JobPage> Scheduler::List(const store::ListJobsQuery& query) {
  return store_->ListJobs(query);
}

absl::StatusOr<Job> Scheduler::Cancel(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto queued =
      std::find_if(queue_.begin(), queue_.end(), [&](const QueuedJob& q) { return q.id == id; });
  if (queued != queue_.end()) {
    ASSIGN_OR_RETURN(Job job, store_->GetJob(id));
    queue_.erase(queued);
    job.state = JobState::kCancelled;
    job.finished_us = NowUs();
    RETURN_IF_ERROR(
        WriteJobAndEvents(job, {StateEvent(job, "cancelled while queued")})
            .status());
    NotifyWatchers();
    return job;
  }
  auto running = running_.find(id);
  if (running != running_.end()) {
    if (running->second->observer->stop_reason() == StopReason::kNone) {
      running->second->observer->RequestStop(StopReason::kCancel);
      running->second->observer->OnWarning("cancellation requested; stopping after this step");
    }
    return store_->GetJob(id);
  }
  ASSIGN_OR_RETURN(Job job, store_->GetJob(id));
  if (store::IsTerminal(job.state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " already ", store::JobStateName(job.state),
                     "; only QUEUED or RUNNING jobs can be cancelled"));
  }
  if (shutting_down_) return absl::UnavailableError("the server is shutting down");
  return absl::InternalError(absl::StrCat("job ", id, " is ", store::JobStateName(job.state),
                                          " in the store but not known to the scheduler"));
}

absl::StatusOr<std::vector<JobEvent>> Scheduler::WaitForEvents(const std::string& job_id,
                                                               int64_t after_sequence,
                                                               int max_events,
                                                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int64_t epoch = 0;
    {
      absl::MutexLock lock(&events_mu_);
      if (events_closed_) return absl::UnavailableError("the server is shutting down");
      epoch = events_epoch_;
      // An unfinished job's newest events come from memory; the store answers the rest.
      std::optional<std::vector<JobEvent>> recent =
          recent_events_.After(job_id, after_sequence, max_events);
      if (recent.has_value()) {
        if (!recent->empty()) return *std::move(recent);
        while (events_epoch_ == epoch && !events_closed_) {
          if (events_cv_.WaitWithDeadline(&events_mu_, deadline)) break;  // timed out
        }
        if (events_closed_) return absl::UnavailableError("the server is shutting down");
        if (events_epoch_ == epoch) return std::vector<JobEvent>{};  // timed out, nothing new
        continue;
      }
    }
    // The state first: a terminal state and its last event are written together, so a terminal
    // job with nothing after `after_sequence` will never have more.
    ASSIGN_OR_RETURN(Job job, store_->GetJob(job_id));
    ASSIGN_OR_RETURN(std::vector<JobEvent> events,
                     store_->EventsAfter(job_id, after_sequence, max_events));
    if (!events.empty() || store::IsTerminal(job.state)) return events;

    absl::MutexLock lock(&events_mu_);
    while (events_epoch_ == epoch && !events_closed_) {
      if (events_cv_.WaitWithDeadline(&events_mu_, deadline)) break;  // timed out
    }
    if (events_closed_) return absl::UnavailableError("the server is shutting down");
    if (events_epoch_ == epoch) return std::vector<JobEvent>{};  // timed out with nothing new
  }
}

absl::StatusOr<std::vector<JobEvent>> Scheduler::WriteJobAndEvents(const Job& job,
                                                                   std::vector<JobEvent> events) {
  absl::StatusOr<std::vector<JobEvent>> written =
      store_->UpdateJobAndAppendEvents(job, std::move(events));
  if (written.ok()) {
    absl::MutexLock lock(&events_mu_);
    recent_events_.Add(*written);
  }
  return written;
}

void Scheduler::NotifyWatchers() {
  absl::MutexLock lock(&events_mu_);
  ++events_epoch_;
  events_cv_.SignalAll();
}

void Scheduler::DispatchLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      while (!dispatch_pending_ && !shutting_down_) dispatch_cv_.Wait(&mu_);
      if (shutting_down_) return;
      dispatch_pending_ = false;
    }
    DispatchOnce();
    JoinFinishedThreads();
  }
}

void Scheduler::DispatchOnce() {
  absl::MutexLock flush_lock(&flush_mu_);
  std::vector<RunningJob*> started;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    std::stable_sort(queue_.begin(), queue_.end(), [](const QueuedJob& a, const QueuedJob& b) {
      if (a.priority != b.priority) return a.priority > b.priority;
      if (a.created_us != b.created_us) return a.created_us < b.created_us;
      return a.id < b.id;
    });
    for (auto it = queue_.begin(); it != queue_.end();) {
      std::vector<int> slots = devices_.Acquire(it->gpus);
      if (slots.empty()) {
        ++it;
        continue;
      }
      absl::StatusOr<Job> job = store_->GetJob(it->id);
      if (!job.ok()) {
        LogError(it->id, job.status());
        devices_.Release(slots);
        it = queue_.erase(it);
        continue;
      }
      auto running = std::make_unique<RunningJob>();
      running->job = *std::move(job);
      running->job.state = JobState::kRunning;
      running->job.started_us = NowUs();
      running->job.finished_us = 0;
      running->job.error.clear();
      running->job.devices.clear();
      for (int slot : slots) running->job.devices.push_back(devices_.name(slot));
      running->slots = std::move(slots);
      running->observer = std::make_unique<JobObserver>(running->job.id, NowUs);
      started.push_back(running.get());
      running_[it->id] = std::move(running);
      it = queue_.erase(it);
    }
  }
  for (RunningJob* running : started) {
    Job job;
    {
      absl::MutexLock lock(&mu_);
      job = running->job;
    }
    absl::Status written =
        store_
            ->UpdateJobAndAppendEvents(
                job,
                {StateEvent(job, absl::StrCat("running on ", absl::StrJoin(job.devices, ",")))})
            .status();
    if (!written.ok()) LogError(job.id, written);
    absl::MutexLock lock(&mu_);  // FinishJob takes mu_ before touching `thread`
    running->thread = std::thread([this, running, job] { RunJob(running, job); });
  }
  if (!started.empty()) NotifyWatchers();
}

void Scheduler::RunJob(RunningJob* running, Job job) {
  absl::StatusOr<engine::TrainResult> result = absl::InternalError("the job runner did not return");
  try {
    result = runner_->Run(job, job.devices, job.output_dir, running->observer.get());
  } catch (const std::exception& e) {
    result = absl::InternalError(absl::StrCat("training crashed: ", e.what()));
  } catch (...) {
    result = absl::InternalError("training crashed with an unknown exception");
  }
  FinishJob(running, result);
}

void Scheduler::FinishJob(RunningJob* running, const absl::StatusOr<engine::TrainResult>& result) {
  absl::MutexLock flush_lock(&flush_mu_);
  JobProgress progress = running->observer->Drain();
  const StopReason stop = running->observer->stop_reason();
  Job job;
  {
    absl::MutexLock lock(&mu_);
    ApplyProgress(progress, &running->job);
    job = running->job;
  }
  std::vector<JobEvent> events = std::move(progress.events);
  std::string message;
  if (!result.ok()) {
    job.state = JobState::kFailed;
    job.error = std::string(result.status().message());
    JobEvent error = StateEvent(job, job.error);
    error.type = EventType::kError;
    events.push_back(std::move(error));
    message = absl::StrCat("failed: ", job.error);
  } else {
    if (result->total_parameters > 0) job.total_parameters = result->total_parameters;
    if (result->trainable_parameters > 0) job.trainable_parameters = result->trainable_parameters;
    if (result->steps > 0) job.last_step = result->steps;
    if (result->final_checkpoint.has_value()) {
      job.adapter_bytes = result->final_checkpoint->adapter_bytes;
    }
    if (result->outcome == engine::Outcome::kCompleted) {
      job.state = JobState::kSucceeded;
      message = absl::StrCat("succeeded after ", job.last_step, " steps");
    } else if (stop == StopReason::kShutdown) {
      job.state = JobState::kQueued;
      message = "server shutting down; the job will resume from its last checkpoint";
    } else if (stop == StopReason::kCancel) {
      job.state = JobState::kCancelled;
      message = absl::StrCat("cancelled at step ", job.last_step);
    } else {
      job.state = JobState::kFailed;
      job.error = "the engine stopped the job without being asked to";
      message = absl::StrCat("failed: ", job.error);
    }
  }
  if (store::IsTerminal(job.state)) job.finished_us = NowUs();
  events.push_back(StateEvent(job, message));
  RecordCheckpoints(job.id, progress);
  absl::Status written = WriteJobAndEvents(job, std::move(events)).status();
  if (!written.ok()) LogError(job.id, written);
  {
    absl::MutexLock lock(&mu_);
    devices_.Release(running->slots);
    finished_threads_.push_back(std::move(running->thread));
    running_.erase(job.id);  // destroys `running`
    dispatch_pending_ = true;
    dispatch_cv_.SignalAll();
  }
  NotifyWatchers();
}

void Scheduler::PublishLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (!publisher_stop_) publish_cv_.WaitWithTimeout(&mu_, options_.event_flush_interval);
      if (publisher_stop_) return;
    }
    absl::MutexLock flush_lock(&flush_mu_);
    FlushProgress();
  }
}

void Scheduler::FlushProgress() {
  std::vector<std::pair<Job, JobProgress>> batch;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, running] : running_) {
      JobProgress progress = running->observer->Drain();
      if (progress.events.empty() && progress.checkpoints.empty() &&
          progress.deleted_checkpoint_steps.empty()) {
        continue;
      }
      ApplyProgress(progress, &running->job);
      batch.emplace_back(running->job, std::move(progress));
    }
  }
  for (auto& [job, progress] : batch) {
    RecordCheckpoints(job.id, progress);
    absl::Status written =
        WriteJobAndEvents(job, std::move(progress.events)).status();
    if (!written.ok()) LogError(job.id, written);
  }
  if (!batch.empty()) NotifyWatchers();
}

void Scheduler::RecordCheckpoints(const std::string& job_id, const JobProgress& progress) {
  for (const store::CheckpointRecord& checkpoint : progress.checkpoints) {
    absl::Status recorded = store_->InsertCheckpoint(checkpoint);
    if (!recorded.ok()) LogError(job_id, recorded);
  }
  for (int64_t step : progress.deleted_checkpoint_steps) {
    absl::Status deleted = store_->DeleteCheckpoint(job_id, step);
    if (!deleted.ok() && !absl::IsNotFound(deleted)) LogError(job_id, deleted);
  }
}

void Scheduler::JoinFinishedThreads() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    threads.swap(finished_threads_);
  }
  for (std::thread& thread : threads) {
    if (thread.joinable()) thread.join();
  }
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
  JoinFinishedThreads();
  {
    absl::MutexLock lock(&mu_);
    publisher_stop_ = true;
    publish_cv_.SignalAll();
  }
  if (publisher_.joinable()) publisher_.join();
  {
    absl::MutexLock lock(&events_mu_);
    events_closed_ = true;
    events_cv_.SignalAll();
  }
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  dispatch_cv_.SignalAll();
}

absl::StatusOr<SchedulerStats> Scheduler::Stats() {
  SchedulerStats stats;
  ASSIGN_OR_RETURN(stats.jobs_by_state, store_->CountJobsByState());
  absl::MutexLock lock(&mu_);
  stats.queue_length = static_cast<int64_t>(queue_.size());
  for (const auto& [id, running] : running_) {
    stats.running.push_back(RunningJobStats{id, running->job.devices, running->job.started_us,
                                            running->job.last_step, running->job.total_steps,
                                            running->job.latest_step,
                                            running->job.latest_eval});
  }
  for (int slot = 0; slot < devices_.size(); ++slot) {
    stats.devices.push_back(
        DeviceStats{devices_.name(slot), devices_.slots_per_device(), devices_.busy(slot)});
  }
  return stats;
}

}  // namespace attune::scheduler
