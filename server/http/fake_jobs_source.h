// An in-memory JobsSource for tests of the HTTP side: jobs and events are added by the test (or
// by a thread that plays a training run), then read back through the endpoints.
//
// Test-only (library attune_http_testing). Thread-safe: every method takes mu_.
#ifndef ATTUNE_SERVER_HTTP_FAKE_JOBS_SOURCE_H_
#define ATTUNE_SERVER_HTTP_FAKE_JOBS_SOURCE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/http/jobs_source.h"

namespace attune::http {

class FakeJobsSource : public JobsSource {
 public:
  // Adds (or replaces) a job. Its events start empty.
  void PutJob(const JobView& job);
  // Sets a job's state and appends a "state" event. The job must exist.
  void SetState(const std::string& id, const std::string& state);
  // Appends a "step" event and makes it the job's latest step. The job must exist.
  void AddStep(const std::string& id, const StepMetrics& step);
  // Appends an "eval" event and makes it the job's latest evaluation.
  void AddEval(const std::string& id, const EvalMetrics& eval);
  void SetCheckpointBytes(int64_t bytes);

  absl::StatusOr<std::vector<JobView>> ListJobs() override;
  absl::StatusOr<JobView> GetJob(const std::string& id) override;
  absl::StatusOr<std::vector<JobEventView>> ListEvents(const std::string& id,
                                                       int64_t after_sequence,
                                                       int max_events) override;
  ServiceStats Stats() override;

 private:
  JobEventView& Append(const std::string& id, const std::string& type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);  // insertion order
  std::map<std::string, JobView> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<JobEventView>> events_ ABSL_GUARDED_BY(mu_);
  int64_t checkpoint_bytes_ ABSL_GUARDED_BY(mu_) = -1;
};

}  // namespace attune::http

#endif  // ATTUNE_SERVER_HTTP_FAKE_JOBS_SOURCE_H_
