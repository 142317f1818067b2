#include "server/http/fake_jobs_source.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace attune::http {

void FakeJobsSource::PutJob(const JobView& job) {
  absl::MutexLock lock(&mu_);
  if (jobs_.count(job.id) == 0) order_.push_back(job.id);
  jobs_[job.id] = job;
  events_[job.id];
}

JobEventView& FakeJobsSource::Append(const std::string& id, const std::string& type) {
  std::vector<JobEventView>& events = events_.at(id);
  JobEventView event;
  event.sequence = static_cast<int64_t>(events.size()) + 1;
  event.time_unix_ms = 1700000000000 + event.sequence;
  event.type = type;
  events.push_back(event);
  return events.back();
}

void FakeJobsSource::SetState(const std::string& id, const std::string& state) {
  absl::MutexLock lock(&mu_);
  jobs_.at(id).state = state;
  Append(id, "state").state = state;
}

void FakeJobsSource::AddStep(const std::string& id, const StepMetrics& step) {
  absl::MutexLock lock(&mu_);
  jobs_.at(id).latest_step = step;
  Append(id, "step").step = step;
}

void FakeJobsSource::AddEval(const std::string& id, const EvalMetrics& eval) {
  absl::MutexLock lock(&mu_);
  jobs_.at(id).latest_eval = eval;
  Append(id, "eval").eval = eval;
}

void FakeJobsSource::SetCheckpointBytes(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  checkpoint_bytes_ = bytes;
}

absl::StatusOr<std::vector<JobView>> FakeJobsSource::ListJobs() {
  absl::MutexLock lock(&mu_);
  std::vector<JobView> out;
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) out.push_back(jobs_.at(*it));
  return out;
}

absl::StatusOr<JobView> FakeJobsSource::GetJob(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", id, "' not found"));
  return it->second;
}

absl::StatusOr<std::vector<JobEventView>> FakeJobsSource::ListEvents(const std::string& id,
                                                                     int64_t after_sequence,
                                                                     int max_events) {
  absl::MutexLock lock(&mu_);
  auto it = events_.find(id);
  if (it == events_.end()) return absl::NotFoundError(absl::StrCat("job '", id, "' not found"));
  std::vector<JobEventView> out;
  for (const JobEventView& event : it->second) {
    if (event.sequence > after_sequence && static_cast<int>(out.size()) < max_events) {
      out.push_back(event);
    }
  }
  return out;
}

ServiceStats FakeJobsSource::Stats() {
  absl::MutexLock lock(&mu_);
  ServiceStats stats;
  stats.checkpoint_bytes_written = checkpoint_bytes_;
  for (const auto& [id, job] : jobs_) {
    ++stats.jobs_by_state[job.state];
    if (job.state == "QUEUED") ++stats.queue_length;
    if (job.state == "RUNNING") {
      RunningJobStats running;
      running.id = id;
      running.device = job.devices.empty() ? "cpu" : job.devices.front();
      running.step = job.latest_step;
      if (job.latest_eval) running.eval_loss = job.latest_eval->loss;
      stats.running.push_back(running);
    }
  }
  return stats;
}

}  // namespace attune::http
