#include "server/scheduler/event_hub.h"

#include <optional>
#include <utility>

#include "common/status_macros.h"

namespace attune::scheduler {

using store::Job;
using store::JobEvent;

EventHub::EventHub(store::Store* store) : store_(store) {}

absl::StatusOr<Job> EventHub::Insert(const Job& job, std::vector<JobEvent> events) {
  ASSIGN_OR_RETURN(Job inserted, store_->InsertJob(job, &events));
  Publish(events);
  return inserted;
}

absl::StatusOr<std::vector<JobEvent>> EventHub::Record(const Job& job,
                                                       std::vector<JobEvent> events) {
  ASSIGN_OR_RETURN(std::vector<JobEvent> written,
                   store_->UpdateJobAndAppendEvents(job, std::move(events)));
  Publish(written);
  return written;
}

absl::StatusOr<std::vector<JobEvent>> EventHub::Append(std::vector<JobEvent> events) {
  ASSIGN_OR_RETURN(std::vector<JobEvent> written, store_->AppendEvents(std::move(events)));
  Publish(written);
  return written;
}

absl::StatusOr<std::vector<JobEvent>> EventHub::RecordFailure(const std::string& id,
                                                              const std::string& error,
                                                              int64_t finished_us,
                                                              std::vector<JobEvent> events) {
  ASSIGN_OR_RETURN(std::vector<JobEvent> written,
                   store_->FailJobAndAppendEvents(id, error, finished_us, std::move(events)));
  Publish(written);
  return written;
}

absl::Status EventHub::Remove(const std::string& id) {
  RETURN_IF_ERROR(store_->DeleteJob(id));
  Publish({});
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> EventHub::RequeueRunning(const std::string& reason,
                                                                  int64_t now_us) {
  ASSIGN_OR_RETURN(std::vector<std::string> ids, store_->RequeueRunningJobs(reason, now_us));
  Publish({});
  return ids;
}

void EventHub::Publish(const std::vector<JobEvent>& written) {
  absl::MutexLock lock(&mu_);
  tail_.Add(written);
  ++epoch_;
  cv_.SignalAll();
}

bool EventHub::AwaitNews(int64_t epoch, absl::Time deadline) {
  while (epoch_ == epoch && !closed_) {
    if (cv_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
  }
  return epoch_ != epoch || closed_;
}

absl::StatusOr<std::vector<JobEvent>> EventHub::Wait(const std::string& job_id,
                                                     int64_t after_sequence, int max_events,
                                                     absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int64_t epoch = 0;
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return absl::UnavailableError("the server is shutting down");
      epoch = epoch_;
      // An unfinished job's newest events come from memory; the store answers the rest.
      std::optional<std::vector<JobEvent>> recent = tail_.After(job_id, after_sequence, max_events);
      if (recent.has_value()) {
        if (!recent->empty()) return *std::move(recent);
        if (!AwaitNews(epoch, deadline)) return std::vector<JobEvent>{};
        if (closed_) return absl::UnavailableError("the server is shutting down");
        continue;
      }
    }
    // The state first: a terminal state and its last event are written together, so a terminal
    // job with nothing after `after_sequence` will never have more.
    ASSIGN_OR_RETURN(Job job, store_->GetJob(job_id));
    ASSIGN_OR_RETURN(std::vector<JobEvent> events,
                     store_->EventsAfter(job_id, after_sequence, max_events));
    if (!events.empty() || store::IsTerminal(job.state)) return events;
    absl::MutexLock lock(&mu_);
    if (!AwaitNews(epoch, deadline)) return std::vector<JobEvent>{};
    if (closed_) return absl::UnavailableError("the server is shutting down");
  }
}

void EventHub::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  cv_.SignalAll();
}

}  // namespace attune::scheduler
