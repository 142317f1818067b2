// Collects one running job's progress on its training thread, for the scheduler to publish.
//
// The engine calls the TrainingObserver methods on the training thread; each one only turns the
// report into a store::JobEvent and appends it to an in-memory buffer under a short lock, so
// training never waits on SQLite or on watchers. The scheduler's publisher thread calls `Drain`
// to take everything buffered and write it to the store in one transaction. Every step is kept
// (no sampling): a step event is a few hundred bytes and batched writes keep up with thousands
// of steps per second.
//
// Thread safety: every method is thread-safe.
#ifndef ATTUNE_SERVER_SCHEDULER_JOB_OBSERVER_H_
#define ATTUNE_SERVER_SCHEDULER_JOB_OBSERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/engine/trainer.h"
#include "server/store/records.h"

namespace attune::scheduler {

// Why a running job was asked to stop.
enum class StopReason {
  kNone = 0,
  kCancel,    // a user cancelled it: it ends CANCELLED
  kShutdown,  // the server is stopping: it goes back to QUEUED
  kPause,     // a user paused it: it checkpoints and becomes PAUSED
  kPreempt,   // a queued job of higher priority needs its slot: it checkpoints and re-queues
};

// What the observer collected since the last Drain.
struct JobProgress {
  std::vector<store::JobEvent> events;  // in the order they happened; sequences unset
  std::vector<store::CheckpointRecord> checkpoints;
  std::vector<int64_t> deleted_checkpoint_steps;  // checkpoints the engine pruned from disk
  std::optional<StepMetrics> latest_step;         // the newest step's metrics (cumulative)
  std::optional<EvalMetrics> latest_eval;         // the newest evaluation (cumulative)
  int64_t last_step = 0;
  int64_t total_steps = 0;
  std::optional<engine::SpecCheck> setup;     // from OnStart, once
  int64_t adapter_bytes = 0;                  // of the newest checkpoint; 0 = none yet
  std::vector<std::string> shared_base_with;  // every job it trained beside so far (cumulative)
};

// The store's record of `checkpoint`, a checkpoint of job `job_id`, made at `time_us`.
store::CheckpointRecord CheckpointRecordOf(const std::string& job_id,
                                           const engine::CheckpointInfo& checkpoint,
                                           int64_t time_us);

class JobObserver : public engine::TrainingObserver {
 public:
  // `now_us` returns the current unix time in microseconds (a seam for tests).
  JobObserver(std::string job_id, std::function<int64_t()> now_us);

  void OnStart(const engine::SpecCheck& setup, int64_t resumed_from_step) override;
  void OnStep(const engine::StepMetrics& metrics) override;
  void OnEval(const engine::EvalMetrics& metrics) override;
  void OnSharedBase(const std::vector<std::string>& job_ids) override;
  void OnCheckpoint(const engine::CheckpointInfo& checkpoint) override;
  void OnWarning(const std::string& message) override;
  bool StopRequested() override;

  // Asks the job to stop after its current step. The first reason given wins, except that a
  // cancel replaces a pause or a preemption, and a pause a preemption.
  void RequestStop(StopReason reason);
  StopReason stop_reason() const { return stop_.load(); }

  // Takes the buffered events and checkpoints; the metrics and counters are cumulative.
  JobProgress Drain();

 private:
  store::JobEvent NewEvent(store::EventType type) const;

  // Constant after construction.
  const std::string job_id_;
  const std::function<int64_t()> now_us_;

  std::atomic<StopReason> stop_{StopReason::kNone};

  absl::Mutex mu_;
  JobProgress progress_ ABSL_GUARDED_BY(mu_);
};

}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_JOB_OBSERVER_H_
