// The newest events of unfinished jobs, kept in memory so that watchers (WatchJob streams) read
// them without a database query. With many watchers on one job this turns one SQLite read per
// watcher per flush into a copy from memory; the store stays the source of truth.
//
// For each job it holds a contiguous run of sequences [front, back] and every event in that run.
// Batches arrive as they were written (each batch one transaction, so contiguous); a batch that
// continues the run is appended, an older one is ignored, and anything else starts a new run.
// A job's tail is dropped with its terminal state event, so finished jobs are read from the store.
// Thread-compatible: the Scheduler guards it with its events mutex.
#ifndef ATTUNE_SERVER_SCHEDULER_EVENT_TAIL_H_
#define ATTUNE_SERVER_SCHEDULER_EVENT_TAIL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/store/records.h"

namespace attune::scheduler {

class EventTail {
 public:
  // Keeps at most `max_events_per_job` per job (the oldest go first) and `max_jobs` jobs (when
  // more appear, every tail is dropped; reads then fall back to the store).
  explicit EventTail(size_t max_events_per_job = 2048, size_t max_jobs = 256);

  // Records events just written to the store, with their sequences; one or more jobs, each job's
  // events in ascending order as one store transaction assigned them.
  void Add(const std::vector<store::JobEvent>& written);

  // The job's events with sequence > `after`, at most `max_events` (<= 0 = no limit), when the
  // tail can answer exactly: it holds the job and every sequence from after + 1 on. Otherwise
  // nullopt (unknown job, finished job, or `after` older than the tail), and the caller asks the
  // store.
  std::optional<std::vector<store::JobEvent>> After(const std::string& job_id, int64_t after,
                                                    int max_events) const;

 private:
  void AddBatch(const std::string& job_id, std::vector<store::JobEvent> batch);

  // Constant after construction.
  const size_t max_events_per_job_;
  const size_t max_jobs_;
  std::map<std::string, std::deque<store::JobEvent>> tails_;
};

}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_EVENT_TAIL_H_
