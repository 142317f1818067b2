#include "server/http/scheduler_jobs_source.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/time/time.h"

namespace attune::http {
namespace {

constexpr int kMaxListedJobs = 1000;

int64_t Millis(int64_t unix_us) { return unix_us / 1000; }

}  // namespace

JobView JobToView(const store::Job& job) {
  JobView view;
  view.id = job.id;
  view.name = job.spec.name;
  view.owner = job.owner;
  view.state = store::JobStateName(job.state);
  view.spec = job.spec;
  view.created_unix_ms = Millis(job.created_us);
  view.started_unix_ms = Millis(job.started_us);
  view.finished_unix_ms = Millis(job.finished_us);
  view.devices = job.devices;
  view.latest_step = job.latest_step;
  view.latest_eval = job.latest_eval;
  view.trainable_parameters = job.trainable_parameters;
  view.total_parameters = job.total_parameters;
  view.adapter_bytes = job.adapter_bytes;
  view.base_model_bytes = job.base_model_bytes;
  view.error = job.error;
  return view;
}

JobEventView EventToView(const store::JobEvent& event) {
  JobEventView view;
  view.sequence = event.sequence;
  view.time_unix_ms = Millis(event.time_us);
  view.message = event.message;
  switch (event.type) {
    case store::EventType::kStateChanged:
      view.type = "state";
      view.state = store::JobStateName(event.state);
      break;
    case store::EventType::kMetrics:
      view.type = "step";
      view.step = event.step_metrics.value_or(StepMetrics{});
      view.step->step = event.step;
      break;
    case store::EventType::kEval:
      view.type = "eval";
      view.eval = event.eval.value_or(EvalMetrics{});
      view.eval->step = event.step;
      break;
    case store::EventType::kCheckpoint: {
      view.type = "checkpoint";
      CheckpointView checkpoint;
      checkpoint.step = event.step;
      checkpoint.adapter_bytes = event.bytes;
      checkpoint.sha256 = event.sha256;
      checkpoint.best = event.best;
      view.checkpoint = std::move(checkpoint);
      break;
    }
    case store::EventType::kWarning:
      view.type = "warning";
      break;
    case store::EventType::kError:
      view.type = "error";
      break;
  }
  return view;
}

SchedulerJobsSource::SchedulerJobsSource(scheduler::Scheduler* scheduler) : scheduler_(scheduler) {}

absl::StatusOr<std::vector<JobView>> SchedulerJobsSource::ListJobs() {
  store::ListJobsQuery query;
  query.page_size = kMaxListedJobs;
  absl::StatusOr<store::JobPage> page = scheduler_->List(query);
  if (!page.ok()) return page.status();
  std::vector<JobView> out;
  out.reserve(page->jobs.size());
  for (const store::Job& job : page->jobs) out.push_back(JobToView(job));
  return out;
}

absl::StatusOr<JobView> SchedulerJobsSource::GetJob(const std::string& id) {
  absl::StatusOr<store::Job> job = scheduler_->Get(id);
  if (!job.ok()) return job.status();
  return JobToView(*job);
}

absl::StatusOr<std::vector<JobEventView>> SchedulerJobsSource::ListEvents(const std::string& id,
                                                                          int64_t after_sequence,
                                                                          int max_events) {
  absl::StatusOr<std::vector<store::JobEvent>> events =
      scheduler_->WaitForEvents(id, after_sequence, max_events, absl::ZeroDuration());
  if (!events.ok()) return events.status();
  std::vector<JobEventView> out;
  out.reserve(events->size());
  for (const store::JobEvent& event : *events) out.push_back(EventToView(event));
  return out;
}

ServiceStats SchedulerJobsSource::Stats() {
  ServiceStats out;
  absl::StatusOr<scheduler::SchedulerStats> stats = scheduler_->Stats();
  absl::MutexLock lock(&mu_);
  if (stats.ok()) {
    for (const auto& [state, count] : stats->jobs_by_state) {
      out.jobs_by_state[store::JobStateName(state)] = count;
    }
    out.queue_length = stats->queue_length;
    for (const scheduler::RunningJobStats& job : stats->running) {
      RunningJobStats running;
      running.id = job.job_id;
      running.device = job.devices.empty() ? "" : job.devices.front();
      running.step = job.latest_step;
      if (job.latest_eval.has_value()) running.eval_loss = job.latest_eval->loss;
      running.artifact_bytes = job.artifact_bytes;
      out.running.push_back(std::move(running));
      checkpoint_cursors_.emplace(job.job_id, 0);
    }
  }
  // Add the bytes of checkpoint events not read yet; forget jobs that have stopped running once
  // their log is drained.
  for (auto it = checkpoint_cursors_.begin(); it != checkpoint_cursors_.end();) {
    absl::StatusOr<std::vector<store::JobEvent>> events =
        scheduler_->WaitForEvents(it->first, it->second, 0, absl::ZeroDuration());
    bool still_running = false;
    if (stats.ok()) {
      for (const auto& job : stats->running) still_running |= job.job_id == it->first;
    }
    if (events.ok()) {
      for (const store::JobEvent& event : *events) {
        if (event.type == store::EventType::kCheckpoint) checkpoint_bytes_ += event.bytes;
        it->second = event.sequence;
      }
    }
    it = (!events.ok() || !still_running) ? checkpoint_cursors_.erase(it) : std::next(it);
  }
  out.checkpoint_bytes_written = checkpoint_bytes_;
  return out;
}

}  // namespace attune::http
