// The one path by which a job's state changes and events reach the store and its watchers.
//
// Every write the scheduler makes goes through an EventHub method: the store writes the job row
// and its events in one transaction, and the events just written are kept in an in-memory tail
// (EventTail) and the watchers woken. `Wait` answers watchers from that tail when it can and
// from the store otherwise, so many watchers of a running job cost no database query, and no
// event is seen late: there is no second write path that bypasses the tail.
//
// Thread safety: every method is thread-safe. The hub's mutex is taken after the scheduler's
// locks, never before; it is never held during a store call.
#ifndef ATTUNE_SERVER_SCHEDULER_EVENT_HUB_H_
#define ATTUNE_SERVER_SCHEDULER_EVENT_HUB_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/scheduler/event_tail.h"
#include "server/store/records.h"
#include "server/store/store.h"

namespace attune::scheduler {

class EventHub {
 public:
  // `store` is not owned and must outlive the hub.
  explicit EventHub(store::Store* store);
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Inserts `job` (its id set by the caller) with `events` in one transaction. Store errors as
  // store::Store::InsertJob.
  absl::StatusOr<store::Job> Insert(const store::Job& job, std::vector<store::JobEvent> events);

  // Writes `job` and appends `events` in one transaction; returns the events with sequences.
  absl::StatusOr<std::vector<store::JobEvent>> Record(const store::Job& job,
                                                      std::vector<store::JobEvent> events);

  // Appends `events` without touching the jobs' rows (Store::AppendEvents); returns them with
  // sequences.
  absl::StatusOr<std::vector<store::JobEvent>> Append(std::vector<store::JobEvent> events);

  // Marks job `id` FAILED with `error` without reading its row (Store::FailJobAndAppendEvents).
  absl::StatusOr<std::vector<store::JobEvent>> RecordFailure(const std::string& id,
                                                             const std::string& error,
                                                             int64_t finished_us,
                                                             std::vector<store::JobEvent> events);

  // Deletes a finished job's rows (Store::DeleteJob) and wakes every waiter, so that a watcher
  // of the job finds it gone (NOT_FOUND) instead of waiting out its timeout.
  absl::Status Remove(const std::string& id);

  // Start-up recovery (Store::RequeueRunningJobs): before any watcher, so nothing is cached.
  absl::StatusOr<std::vector<std::string>> RequeueRunning(const std::string& reason,
                                                          int64_t now_us);

  // The job's events with sequence > after_sequence, ascending, at most `max_events` (<= 0 = no
  // limit). If there are none yet, blocks until some are recorded or `timeout` passes (then
  // returns an empty vector). Returns an empty vector at once for a job in a terminal state
  // whose every event has been read. NOT_FOUND for an unknown job; UNAVAILABLE once closed.
  absl::StatusOr<std::vector<store::JobEvent>> Wait(const std::string& job_id,
                                                    int64_t after_sequence, int max_events,
                                                    absl::Duration timeout);

  // Wakes every waiter with UNAVAILABLE, now and for every later call. Idempotent.
  void Close();

 private:
  // Remembers `written` for watchers and wakes them.
  void Publish(const std::vector<store::JobEvent>& written);
  // Waits until something new is published, `deadline` passes or the hub closes. False on
  // timeout. Caller holds mu_.
  bool AwaitNews(int64_t epoch, absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  store::Store* const store_;

  absl::Mutex mu_;
  absl::CondVar cv_;
  int64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;  // bumped after every write
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  EventTail tail_ ABSL_GUARDED_BY(mu_);  // what watchers read first
};

}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_EVENT_HUB_H_
