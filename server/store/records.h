// The records attune keeps about jobs: the job itself, its event log and its checkpoints.
//
// These are plain C++ values shared by the store (which persists them in SQLite), the scheduler
// (which creates and updates them) and the gRPC layer (which converts them to proto messages).
// No SQLite, proto or LibTorch types appear here. Times are unix microseconds; 0 means "not set".
#ifndef ATTUNE_SERVER_STORE_RECORDS_H_
#define ATTUNE_SERVER_STORE_RECORDS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "common/metrics.h"

namespace attune::store {

enum class JobState {
  kQueued = 0,  // waiting for devices (also: stopped by a shutdown or crash, to be resumed)
  kRunning,     // training on its devices
  kSucceeded,   // every step taken, final checkpoint written
  kFailed,      // ended with an error (see Job::error)
  kCancelled,   // cancelled by a user
  kPaused,      // stopped by PauseJob at a checkpoint, devices freed; ResumeJob re-queues it
};

// True for kSucceeded, kFailed and kCancelled: the job will not change state again.
bool IsTerminal(JobState state);

// "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "PAUSED" (the names stored in the
// database).
std::string JobStateName(JobState state);
// Inverse of JobStateName; INVALID_ARGUMENT naming the allowed values on anything else.
absl::StatusOr<JobState> ParseJobState(const std::string& name);

struct Job {
  std::string id;          // assigned by Store::InsertJob when empty, e.g. "j-3f9a0c12d4e5b6a7"
  std::string request_id;  // client-chosen idempotency key; unique per owner; empty = none
  std::string owner;       // tenant that owns the job; empty until authentication exists
  JobSpec spec;
  JobState state = JobState::kQueued;
  int64_t created_us = 0;                  // when it was submitted
  int64_t started_us = 0;                  // when it last started running
  int64_t finished_us = 0;                 // when it reached a terminal state
  std::vector<std::string> devices;        // devices it runs (ran) on, e.g. {"cuda:0"}
  std::optional<StepMetrics> latest_step;  // the newest step's metrics; none before the first
  std::optional<EvalMetrics> latest_eval;  // the newest evaluation; none before the first
  int64_t trainable_parameters = 0;
  int64_t total_parameters = 0;
  int64_t adapter_bytes = 0;     // size of the newest checkpoint's adapter files
  int64_t base_model_bytes = 0;  // size of the base model's weight files
  std::string error;             // why it failed (kFailed only)
  int64_t last_step = 0;         // steps taken so far
  int64_t total_steps = 0;       // steps the job will take in all (0 = not known yet)
  std::string output_dir;        // where its checkpoints are written
  int64_t crashed_attempts = 0;  // attempts whose training crashed (JobSpec::max_retries)
  // attuned --share-base: the jobs it trained beside over one copy of their base model.
  std::vector<std::string> shared_base_with;
  // Why the stored row could not be read (its spec or state); empty for a readable row. Such a
  // job is read as FAILED with a default spec and `error` saying why, so that one bad row never
  // fails a whole list; the scheduler marks it FAILED in the store at start.
  std::string unreadable;
};

enum class EventType {
  kStateChanged = 0,  // `state` and a `message` saying why
  kMetrics,           // a training step: `step`, `step_metrics`
  kEval,              // an evaluation: `step`, `eval`
  kCheckpoint,        // a complete checkpoint: `step`, `path`, `bytes`, `sha256`, `best`
  kWarning,           // `message`, e.g. a skipped non-finite step
  kError,             // `message`: why the job failed
};

// "STATE_CHANGED", "METRICS", "EVAL", "CHECKPOINT", "WARNING", "ERROR".
std::string EventTypeName(EventType type);
absl::StatusOr<EventType> ParseEventType(const std::string& name);

// One entry of a job's event log. Sequences are assigned by the store: 1-based, per job, gapless.
struct JobEvent {
  std::string job_id;
  int64_t sequence = 0;  // set by Store::AppendEvent(s); ignored on input
  int64_t time_us = 0;
  EventType type = EventType::kStateChanged;
  JobState state = JobState::kQueued;  // the job's state when the event was recorded
  std::string message;
  // kMetrics, kEval and kCheckpoint:
  int64_t step = 0;
  std::optional<StepMetrics> step_metrics;  // kMetrics only
  std::optional<EvalMetrics> eval;          // kEval only
  // kCheckpoint only:
  std::string path;
  int64_t bytes = 0;
  std::string sha256;
  bool best = false;  // the best checkpoint so far (common/metrics.h, Outranks)
  // kStateChanged to RUNNING: the devices the job was given.
  std::vector<std::string> devices;
};

// A complete checkpoint on disk, as the engine reported it.
struct CheckpointRecord {
  std::string job_id;
  int64_t step = 0;
  std::string dir;     // directory with adapter_model.safetensors, adapter_config.json, ...
  int64_t bytes = 0;   // adapter bytes a download carries
  std::string sha256;  // of adapter_model.safetensors
  int64_t created_us = 0;
  std::optional<double> eval_metric;  // validation metric at this step (higher is better)
};

}  // namespace attune::store

#endif  // ATTUNE_SERVER_STORE_RECORDS_H_
