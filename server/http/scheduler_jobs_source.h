// JobsSource over the real Scheduler: what `attuned --http` serves.
//
// Converts the scheduler's and store's records (store::Job, store::JobEvent, SchedulerStats)
// into the plain views of jobs_source.h. Reads go through the Scheduler's public, thread-safe
// methods (which read SQLite), never the training threads.
//
// attune_checkpoint_written_bytes_total: the scheduler keeps no such counter, so Stats() reads the
// new CHECKPOINT events of jobs it has seen running since the previous call and adds their bytes.
// A job that starts and ends entirely between two scrapes is not counted.
#ifndef ATTUNE_SERVER_HTTP_SCHEDULER_JOBS_SOURCE_H_
#define ATTUNE_SERVER_HTTP_SCHEDULER_JOBS_SOURCE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/http/jobs_source.h"
#include "server/scheduler/scheduler.h"

namespace attune::http {

// Conversions, public for tests.
JobView JobToView(const store::Job& job);
JobEventView EventToView(const store::JobEvent& event);

class SchedulerJobsSource : public JobsSource {
 public:
  // `scheduler` is not owned and must outlive this object.
  explicit SchedulerJobsSource(scheduler::Scheduler* scheduler);

  // The newest 1000 jobs.
  absl::StatusOr<std::vector<JobView>> ListJobs() override;
  absl::StatusOr<JobView> GetJob(const std::string& id) override;
  // Never blocks: returns what the store has now.
  absl::StatusOr<std::vector<JobEventView>> ListEvents(const std::string& id,
                                                       int64_t after_sequence,
                                                       int max_events) override;
  // On a store error returns empty stats (every series 0) rather than failing the scrape.
  ServiceStats Stats() override;

 private:
  // Constant after construction.
  scheduler::Scheduler* const scheduler_;

  absl::Mutex mu_;
  // Jobs seen running -> last event sequence read for the checkpoint counter.
  std::map<std::string, int64_t> checkpoint_cursors_ ABSL_GUARDED_BY(mu_);
  int64_t checkpoint_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace attune::http

#endif  // ATTUNE_SERVER_HTTP_SCHEDULER_JOBS_SOURCE_H_
