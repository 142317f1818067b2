// The scheduler: accepts jobs, queues them, gives them devices and runs them, and records
// everything that happens to them in the store.
//
// It owns the device inventory ("cpu" and/or "cuda:N", each with `slots_per_device` concurrent
// slots). Queued jobs are started in order of priority (higher first), then submission time. A
// job asking for n GPUs starts only when n distinct GPUs each have a free slot, all at once; a job
// with gpus = 0 takes one slot on any device ("cpu" slots first). A queued job that cannot start
// yet does not hold back later jobs that fit now (back-filling): a many-GPU job can wait behind a
// stream of smaller ones.
//
// Each running job has its own thread, which calls JobRunner::Run. Progress reaches the store
// without slowing training: the training thread only appends to an in-memory buffer; a publisher
// thread writes every buffered event (every step is kept) to SQLite in one transaction per
// `event_flush_interval` and wakes the watchers (WaitForEvents), which read the store. A failing
// or throwing job ends FAILED with its error; it never takes the process down.
//
// Restart and shutdown: `Create` first turns jobs left RUNNING (a crash) back into QUEUED, and
// they resume from their newest checkpoint. `Shutdown` (the SIGTERM path) stops dispatching, asks
// running jobs to stop after their current step, waits for them, and leaves them QUEUED.
//
// Thread safety: every public method is thread-safe.
#ifndef ATTUNE_SERVER_SCHEDULER_SCHEDULER_H_
#define ATTUNE_SERVER_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/job_spec.h"
#include "server/scheduler/device_inventory.h"
#include "server/scheduler/event_tail.h"
#include "server/scheduler/job_runner.h"
#include "server/store/records.h"
#include "server/store/store.h"

namespace attune::scheduler {

struct SchedulerOptions {
  // The device inventory: "cpu" or "cuda:N" entries, no duplicates, at least one.
  std::vector<std::string> devices = {"cpu"};
  // Jobs that may run at once on one device, >= 1.
  int slots_per_device = 1;
  // Job output directories are <artifacts_dir>/jobs/<job id>. Required.
  std::string artifacts_dir;
  // Submit returns RESOURCE_EXHAUSTED when this many jobs are already queued, >= 1.
  int max_queued = 1000;
  // How often buffered training events are written to the store (and watchers woken).
  absl::Duration event_flush_interval = absl::Milliseconds(100);
};

struct RunningJobStats {
  std::string job_id;
  std::vector<std::string> devices;
  int64_t started_us = 0;
  int64_t last_step = 0;
  int64_t total_steps = 0;
  std::optional<StepMetrics> latest_step;  // none before the first step
  std::optional<EvalMetrics> latest_eval;  // none before the first evaluation
};

struct DeviceStats {
  std::string device;  // "cpu", "cuda:0", ...
  int slots = 0;       // concurrent jobs allowed
  int busy = 0;        // slots in use now
};

// A snapshot for the metrics exporter.
struct SchedulerStats {
  std::map<store::JobState, int64_t> jobs_by_state;  // every job in the store, by state
  int64_t queue_length = 0;                          // jobs waiting in this process's queue
  std::vector<RunningJobStats> running;              // ordered by job id
  std::vector<DeviceStats> devices;                  // in inventory order
};

class JobObserver;  // job_observer.h: buffers one running job's progress
struct JobProgress;

class Scheduler {
 public:
  // Validates `options` (INVALID_ARGUMENT naming the field), requeues jobs left RUNNING in
  // `store` by a previous process, loads the queued jobs, and starts dispatching. `store` and
  // `runner` are not owned and must outlive the scheduler. INTERNAL on store errors.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const SchedulerOptions& options,
                                                           store::Store* store, JobRunner* runner);

  // Calls Shutdown().
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job and returns it (state QUEUED). Checks, in order: the spec's fields
  // (ValidateJobSpecFields) and that `spec.gpus` does not exceed the GPUs in the inventory, both
  // INVALID_ARGUMENT naming the field; a job with the same non-empty (owner, request_id) already
  // exists: that job is returned and nothing else happens; the runner's Check of the files
  // (INVALID_ARGUMENT from it propagates); the queue is full: RESOURCE_EXHAUSTED; the scheduler
  // is shutting down: UNAVAILABLE. Blocks while the runner reads the job's files.
  absl::StatusOr<store::Job> Submit(const JobSpec& spec, const std::string& request_id,
                                    const std::string& owner);

  // The job with this id; NOT_FOUND when there is none.
  absl::StatusOr<store::Job> Get(const std::string& id);

  // One page of jobs, newest first (see store::Store::ListJobs).
  absl::StatusOr<store::JobPage> List(const store::ListJobsQuery& query);

  // Cancels a job and returns it. A QUEUED job becomes CANCELLED at once. A RUNNING job is asked
  // to stop and becomes CANCELLED after its current step; the job returned is still RUNNING
  // then. NOT_FOUND for an unknown id; FAILED_PRECONDITION for a job that already finished.
  absl::StatusOr<store::Job> Cancel(const std::string& id);

  // The job's events with sequence > after_sequence, ascending, at most `max_events` (<= 0 =
  // no limit). If there are none yet, blocks until some are recorded or `timeout` passes (then
  // returns an empty vector). Returns an empty vector at once when the job has reached a
  // terminal state and every event has been read. NOT_FOUND for an unknown job; UNAVAILABLE once
  // the scheduler is shutting down. Reads the store only; never delays a training thread.
  absl::StatusOr<std::vector<store::JobEvent>> WaitForEvents(const std::string& job_id,
                                                             int64_t after_sequence, int max_events,
                                                             absl::Duration timeout);

  // Stops dispatching and rejects new submissions, asks every running job to stop after its
  // current step (the engine checkpoints), waits for them to return, and leaves them QUEUED so the
  // next process resumes them. Idempotent; blocks until every job thread has ended.
  void Shutdown();

  // Counts by state, the queue length, running jobs with their latest metrics, and device use.
  // INTERNAL on store errors.
  absl::StatusOr<SchedulerStats> Stats();

  const SchedulerOptions& options() const { return options_; }

 private:
  struct QueuedJob {
    int priority = 0;
    int64_t created_us = 0;
    std::string id;
    int gpus = 0;
  };
  struct RunningJob {
    store::Job job;          // the job as last written (state RUNNING), with its progress
    std::vector<int> slots;  // from devices_.Acquire
    std::unique_ptr<JobObserver> observer;
    std::thread thread;
  };

  Scheduler(const SchedulerOptions& options, DeviceInventory devices, store::Store* store,
            JobRunner* runner);

  absl::Status LoadQueue();
  void DispatchLoop();
  void PublishLoop();
  // Starts every queued job that fits the free slots now.
  void DispatchOnce();
  // Body of a job's thread: runs `job` (a copy of running->job) and records how it ended.
  void RunJob(RunningJob* running, store::Job job);
  void FinishJob(RunningJob* running, const absl::StatusOr<engine::TrainResult>& result);
  // Writes every running job's buffered progress to the store. Caller holds flush_mu_.
  void FlushProgress() ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  // Records new checkpoints and forgets the ones the engine pruned. Caller holds flush_mu_.
  void RecordCheckpoints(const std::string& job_id, const JobProgress& progress)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  void NotifyWatchers();
  // store_->UpdateJobAndAppendEvents, then remembers the written events for watchers.
  absl::StatusOr<std::vector<store::JobEvent>> WriteJobAndEvents(
      const store::Job& job, std::vector<store::JobEvent> events);
  void JoinFinishedThreads();

  // Constant after construction.
  const SchedulerOptions options_;
  store::Store* const store_;
  JobRunner* const runner_;

  // Held while writing a running job's row or events, so that a job's events reach the store in
  // the order they happened. Acquired before mu_, never after.
  absl::Mutex flush_mu_;

  absl::Mutex mu_ ABSL_ACQUIRED_AFTER(flush_mu_);
  absl::CondVar dispatch_cv_;  // signalled when the queue or the free slots change
  DeviceInventory devices_ ABSL_GUARDED_BY(mu_);
  const int gpu_count_;  // GPUs in devices_, constant after construction
  std::vector<QueuedJob> queue_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<RunningJob>> running_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> finished_threads_ ABSL_GUARDED_BY(mu_);
  bool dispatch_pending_ ABSL_GUARDED_BY(mu_) = true;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar publish_cv_;  // wakes the publisher early to stop
  bool publisher_stop_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex events_mu_;
  absl::CondVar events_cv_;
  int64_t events_epoch_ ABSL_GUARDED_BY(events_mu_) = 0;  // bumped after every event write
  bool events_closed_ ABSL_GUARDED_BY(events_mu_) = false;
  EventTail recent_events_ ABSL_GUARDED_BY(events_mu_);  // what watchers read first

  std::thread dispatcher_;
  std::thread publisher_;
};

}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_SCHEDULER_H_
