// The narrow, read-only view of the job service that the HTTP side (metrics, dashboard, JSON
// endpoints) needs.
//
// The HTTP server never sees the scheduler, the store or gRPC types: it reads jobs through this
// interface. `attuned` implements it with a small adapter over the Scheduler
// (server/http/scheduler_jobs_source.h, the one file here that sees the scheduler); tests
// implement it with a scripted fake. Every value here is plain C++ (metrics as the typed
// StepMetrics/EvalMetrics of common/metrics.h, never engine types) and copied out, so a reader
// never holds a lock inside the scheduler. CMake's http_layering_test keeps it that way.
#ifndef ATTUNE_SERVER_HTTP_JOBS_SOURCE_H_
#define ATTUNE_SERVER_HTTP_JOBS_SOURCE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "common/metrics.h"

namespace attune::http {

// True for a JobView::state that no longer changes: SUCCEEDED, FAILED or CANCELLED.
inline bool IsTerminalState(const std::string& state) {
  return state == "SUCCEEDED" || state == "FAILED" || state == "CANCELLED";
}

// One job as the dashboard and /api/jobs show it.
struct JobView {
  std::string id;
  std::string name;
  std::string owner;  // the tenant that created it ("" without --auth-tokens)
  std::string state;  // upper case, as in the proto: "QUEUED", "RUNNING", "SUCCEEDED", ...
  JobSpec spec;
  int64_t created_unix_ms = 0;       // 0 = unknown
  int64_t started_unix_ms = 0;       // 0 = not started
  int64_t finished_unix_ms = 0;      // 0 = not finished
  std::vector<std::string> devices;  // e.g. {"cuda:0"} or {"cpu"}
  std::optional<StepMetrics> latest_step;
  std::optional<EvalMetrics> latest_eval;
  int64_t trainable_parameters = 0;  // 0 = not known yet
  int64_t total_parameters = 0;
  int64_t adapter_bytes = 0;     // of the latest checkpoint; 0 = none written yet
  int64_t base_model_bytes = 0;  // 0 = not known yet
  std::string error;             // why the job failed; empty otherwise
};

// A checkpoint as the dashboard shows it (a "checkpoint" event).
struct CheckpointView {
  int64_t step = 0;
  int64_t adapter_bytes = 0;  // size of the adapter files a download carries
  std::string sha256;         // of adapter_model.safetensors, lower-case hex
  bool best = false;          // the best checkpoint so far (common/metrics.h's Outranks)
};

// One entry of a job's event log, in sequence order. Exactly one of the optional parts is set
// for "step", "eval" and "checkpoint" events; "state" events carry `state`, "warning" and
// "error" events carry `message`.
struct JobEventView {
  int64_t sequence = 0;  // 1-based, strictly increasing per job
  int64_t time_unix_ms = 0;
  std::string type;     // "state", "step", "eval", "checkpoint", "warning", "error"
  std::string state;    // for "state": the new state
  std::string message;  // for "warning" / "error" (and optionally "state")
  std::optional<StepMetrics> step;
  std::optional<EvalMetrics> eval;
  std::optional<CheckpointView> checkpoint;
};

// The latest numbers of one running job, for the per-job Prometheus series.
struct RunningJobStats {
  std::string id;
  std::string device;                     // first device the job runs on ("cpu", "cuda:0")
  std::optional<StepMetrics> step;        // none before the first step
  std::optional<double> eval_loss;        // none before the first evaluation
  std::optional<int64_t> artifact_bytes;  // bytes under its artifact directory; none = unknown
};

// A consistent snapshot of the service, taken at scrape time.
struct ServiceStats {
  std::map<std::string, int64_t> jobs_by_state;  // state (upper case) -> count; missing = 0
  int64_t queue_length = 0;                      // jobs waiting for a device
  std::vector<RunningJobStats> running;
  // Monotonic since the process started: bytes of checkpoints written. Negative = the source
  // does not count them (then `ServiceMetrics::AddCheckpointBytes` feeds the counter).
  int64_t checkpoint_bytes_written = -1;
};

// Implementations must be thread-safe: the HTTP server calls them from several threads at once.
class JobsSource {
 public:
  virtual ~JobsSource() = default;

  // All jobs, newest first. Returns an error only when the backing store fails.
  virtual absl::StatusOr<std::vector<JobView>> ListJobs() = 0;

  // One job. Returns NOT_FOUND when no job has this id.
  virtual absl::StatusOr<JobView> GetJob(const std::string& id) = 0;

  // Up to `max_events` events of job `id` with sequence > `after_sequence`, in order. Returns
  // NOT_FOUND for an unknown job; an empty vector when there is nothing new.
  virtual absl::StatusOr<std::vector<JobEventView>> ListEvents(const std::string& id,
                                                               int64_t after_sequence,
                                                               int max_events) = 0;

  // Counts and running jobs' latest metrics, cheap enough to call on every scrape.
  virtual ServiceStats Stats() = 0;
};

}  // namespace attune::http

#endif  // ATTUNE_SERVER_HTTP_JOBS_SOURCE_H_
