#include "server/scheduler/event_tail.h"

#include <utility>

namespace attune::scheduler {

EventTail::EventTail(size_t max_events_per_job, size_t max_jobs)
    : max_events_per_job_(max_events_per_job), max_jobs_(max_jobs) {}

void EventTail::Add(const std::vector<store::JobEvent>& written) {
  // Split into per-job batches, keeping each job's order.
  std::map<std::string, std::vector<store::JobEvent>> batches;
  for (const store::JobEvent& event : written) batches[event.job_id].push_back(event);
  for (auto& [job_id, batch] : batches) AddBatch(job_id, std::move(batch));
}

void EventTail::AddBatch(const std::string& job_id, std::vector<store::JobEvent> batch) {
  if (batch.empty()) return;
  for (const store::JobEvent& event : batch) {
    if (event.type == store::EventType::kStateChanged && store::IsTerminal(event.state)) {
      tails_.erase(job_id);
      return;
    }
  }
  auto it = tails_.find(job_id);
  if (it == tails_.end()) {
    if (tails_.size() >= max_jobs_) tails_.clear();
    it = tails_.emplace(job_id, std::deque<store::JobEvent>()).first;
  }
  std::deque<store::JobEvent>& tail = it->second;
  if (!tail.empty() && batch.back().sequence < tail.front().sequence) return;  // older: ignore
  if (tail.empty() || batch.front().sequence != tail.back().sequence + 1) tail.clear();
  for (store::JobEvent& event : batch) tail.push_back(std::move(event));
  while (tail.size() > max_events_per_job_) tail.pop_front();
}

std::optional<std::vector<store::JobEvent>> EventTail::After(const std::string& job_id,
                                                             int64_t after, int max_events) const {
  auto it = tails_.find(job_id);
  if (it == tails_.end() || it->second.empty()) return std::nullopt;
  const std::deque<store::JobEvent>& tail = it->second;
  if (after + 1 < tail.front().sequence) return std::nullopt;
  std::vector<store::JobEvent> events;
  // Sequences are contiguous, so the first wanted event sits at a known offset.
  const int64_t start = after + 1 - tail.front().sequence;
  for (int64_t i = start; i < static_cast<int64_t>(tail.size()) &&
                          (max_events <= 0 || static_cast<int>(events.size()) < max_events);
       ++i) {
    events.push_back(tail[static_cast<size_t>(i)]);
  }
  return events;
}

}  // namespace attune::scheduler
