#include "server/http/scheduler_jobs_source.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/time/time.h"

namespace attune::http {
namespace {

constexpr int kMaxListedJobs = 1000;

std::optional<double> Find(const std::map<std::string, double>& metrics, const std::string& key) {
  auto it = metrics.find(key);
  if (it == metrics.end()) return std::nullopt;
  return it->second;
}

// A step's numbers from the metric names the scheduler uses ("train_loss", "lr.<group>", ...).
engine::StepMetrics StepFromMetrics(int64_t step, int64_t total_steps,
                                    const std::map<std::string, double>& metrics) {
  engine::StepMetrics m;
  m.step = step;
  m.total_steps = total_steps;
  m.epoch = Find(metrics, "epoch").value_or(0);
  m.train_loss = Find(metrics, "train_loss").value_or(0);
  m.grad_norm = Find(metrics, "grad_norm").value_or(0);
  m.tokens_per_second = Find(metrics, "tokens_per_second").value_or(0);
  m.samples_per_second = Find(metrics, "samples_per_second").value_or(0);
  m.skipped = Find(metrics, "skipped").value_or(0) != 0;
  for (const auto& [name, value] : metrics) {
    if (absl::StartsWith(name, "lr.")) m.learning_rates[name.substr(3)] = value;
  }
  return m;
}

engine::EvalMetrics EvalFromMetrics(int64_t step, const std::map<std::string, double>& metrics) {
  engine::EvalMetrics m;
  m.step = step;
  m.loss = Find(metrics, "eval_loss").value_or(0);
  m.accuracy = Find(metrics, "eval_accuracy");
  m.pearson = Find(metrics, "eval_pearson");
  m.spearman = Find(metrics, "eval_spearman");
  m.perplexity = Find(metrics, "eval_perplexity");
  m.examples = static_cast<int64_t>(Find(metrics, "eval_examples").value_or(0));
  return m;
}

int64_t Millis(int64_t unix_us) { return unix_us / 1000; }

}  // namespace

JobView JobToView(const store::Job& job) {
  JobView view;
  view.id = job.id;
  view.name = job.spec.name;
  view.state = store::JobStateName(job.state);
  view.spec = job.spec;
  view.created_unix_ms = Millis(job.created_us);
  view.started_unix_ms = Millis(job.started_us);
  view.finished_unix_ms = Millis(job.finished_us);
  view.devices = job.devices;
  if (job.last_step > 0 && job.latest_metrics.count("train_loss") > 0) {
    view.latest_step = StepFromMetrics(job.last_step, job.total_steps, job.latest_metrics);
  }
  if (job.latest_metrics.count("eval_loss") > 0) {
    view.latest_eval = EvalFromMetrics(job.last_step, job.latest_metrics);
  }
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
      view.step = StepFromMetrics(event.step, 0, event.metrics);
      break;
    case store::EventType::kEval:
      view.type = "eval";
      view.eval = EvalFromMetrics(event.step, event.metrics);
      break;
    case store::EventType::kCheckpoint: {
      view.type = "checkpoint";
      engine::CheckpointInfo checkpoint;
      checkpoint.step = event.step;
      checkpoint.dir = event.path;
      checkpoint.adapter_bytes = event.bytes;
      checkpoint.sha256 = event.sha256;
      checkpoint.best = !event.message.empty();
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

SchedulerJobsSource::SchedulerJobsSource(scheduler::Scheduler* scheduler)
    : scheduler_(scheduler) {}

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
      if (job.last_step > 0 && job.latest_metrics.count("train_loss") > 0) {
        running.step = StepFromMetrics(job.last_step, job.total_steps, job.latest_metrics);
      }
      running.eval_loss = Find(job.latest_metrics, "eval_loss");
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
