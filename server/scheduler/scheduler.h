// The scheduler: accepts jobs, queues them, gives them devices and runs them, and records
// everything that happens to them in the store.
//
// It owns the device inventory ("cpu" and/or "cuda:N", each with `slots_per_device` concurrent
// slots). Queued jobs are started in order of priority (higher first), then submission time. A
// job runs `ranks` processes (data-parallel training), one per slot it is given, and JobRunner::Run
// gets one device name per rank. A job with gpus = N takes one slot on each of N distinct GPUs
// (ranks = N); a job with gpus = 0 and one rank takes one slot on any device ("cpu" slots first),
// and one with N > 1 ranks takes N CPU slots at once (several of one device: {"cpu", "cpu"}). A
// job that does not say (gpus = -1) gets one GPU when the server has any, else a CPU slot; one
// that does not say its ranks (0) gets gpus, or 1 on the CPU. The choices are stored with the
// job and named in its "queued" and "running on" events. A queued job that cannot start yet does
// not hold back later jobs that fit now (back-filling); a job never gets part of its slots.
//
// Tenants (a job's `owner`): at the same priority, jobs of different owners take turns (round
// robin: an owner's k-th waiting job has turn `jobs it started so far + k`; equal turns go to
// the owner served longest ago), so one tenant's 500 queued jobs do not starve another's one.
// An owner back after a quiet spell starts at the turn of the least-served busy owner, so it
// cannot claim the turns it missed in one burst. With `tenant_limits`, an owner runs at most
// max_running_jobs jobs and holds at most max_gpus GPUs at once; a job over either limit stays
// QUEUED (never rejected), and says why once in a warning event ("waiting: tenant 'a' runs 2
// job(s), its max_jobs is 2").
//
// Each running job has its own thread, which calls JobRunner::Run. Progress reaches the store
// without slowing training: the training thread only appends to an in-memory buffer
// (JobObserver); a publisher thread writes every buffered event (every step is kept) to SQLite in
// one transaction per `event_flush_interval`. Every write goes through one EventHub, which also
// keeps the newest events in memory for watchers (WaitForEvents), so no event reaches the store
// by a path that watchers do not see. A failing or throwing job ends FAILED with its error; it
// never takes the process down.
//
// Store failures are never only logged. A queued job whose row cannot be read fails with the
// reason; a job whose start cannot be recorded stays QUEUED and is retried after
// `retry_interval`; a job whose end (or checkpoint record) cannot be recorded keeps its place in
// memory and the write is retried on every flush, so the store never says RUNNING for a job
// that is not known here. Each failure is logged with the job id.
//
// Restart and shutdown: `Create` first turns jobs left RUNNING (a crash) back into QUEUED, and
// they resume from their newest checkpoint. `Shutdown` (the SIGTERM path) stops dispatching, asks
// running jobs to stop after their current step, waits for them, and leaves them QUEUED.
//
// Thread safety: every public method is thread-safe. Lock order: delete_mu_, then flush_mu_, then
// mu_, then the EventHub's and the store's own mutexes. No store call is made while mu_ is held.
#ifndef ATTUNE_SERVER_SCHEDULER_SCHEDULER_H_
#define ATTUNE_SERVER_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/job_spec.h"
#include "common/metrics.h"
#include "server/scheduler/clock.h"
#include "server/scheduler/device_inventory.h"
#include "server/scheduler/event_hub.h"
#include "server/scheduler/job_runner.h"
#include "server/store/records.h"
#include "server/store/store.h"

namespace attune::scheduler {

// What one tenant may use at once; 0 = no limit.
struct TenantLimits {
  int64_t max_running_jobs = 0;
  int64_t max_gpus = 0;
};

struct SchedulerOptions {
  // The device inventory: "cpu" or "cuda:N" entries, no duplicates, at least one.
  std::vector<std::string> devices = {"cpu"};
  // Jobs that may run at once on one device, >= 1.
  int slots_per_device = 1;
  // Job output directories are <artifacts_dir>/jobs/<job id>. Required.
  std::string artifacts_dir;
  // Submit returns RESOURCE_EXHAUSTED when this many jobs are already queued, >= 1.
  int max_queued = 1000;
  // How often buffered training events are written to the store (and watchers woken); failed
  // writes of finished jobs and checkpoint records are retried at the same pace. > 0.
  absl::Duration event_flush_interval = absl::Milliseconds(100);
  // How long a queued job whose start could not be recorded waits before it is tried again. > 0.
  absl::Duration retry_interval = absl::Seconds(1);
  // The wait before the first restart of a job whose training crashed (JobSpec::max_retries);
  // it doubles with each further retry. >= 0.
  absl::Duration crash_backoff = absl::Seconds(5);
  // Timestamps of jobs and events; nullptr = RealClock(). Not owned; must outlive the scheduler.
  Clock* clock = nullptr;
  // The limits of a job owner (tenant), asked on every dispatch; nullptr = no limits. Called
  // with mu_ held: it must be thread-safe and must not call the scheduler (attuned's reads the
  // Authenticator's table, whose mutex is taken after mu_).
  std::function<TenantLimits(const std::string& owner)> tenant_limits;
  // Priority preemption (scheduler_preempt.cc): a queued job that cannot start preempts the
  // fewest running jobs of lower priority whose slots let it start (one, for a job of one slot);
  // each checkpoints, goes back to the queue at its place and resumes from its checkpoint. A job
  // is not preempted again within `preemption_grace` of its last preemption (no thrash).
  bool preemption = false;
  absl::Duration preemption_grace = absl::Minutes(10);
  // Shared-base groups (attuned --share-base; engine/training_group.h): a queued job of one slot
  // with no free slot trains on a running job's slot, on a device that `shares_device`, when
  // share_base(job, running, device) is "" (the runner groups them); else its event says why,
  // once. The slot is held until the last job on it ends. Either nullptr = off.
  std::function<bool(const std::string& device)> shares_device;
  std::function<std::string(const TrainSpec& job, const TrainSpec& running,
                            const std::string& device)>
      share_base;
};

struct RunningJobStats {
  std::string job_id;
  std::vector<std::string> devices;
  int64_t started_us = 0;
  int64_t last_step = 0;
  int64_t total_steps = 0;
  std::optional<StepMetrics> latest_step;  // none before the first step
  std::optional<EvalMetrics> latest_eval;  // none before the first evaluation
  std::optional<int64_t> artifact_bytes;   // ArtifactBytes at Stats(); nullopt: unreadable
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
  // True while the dispatcher waits with nothing to do: every submission and freed slot so far
  // has been considered (a job still queued then could not start).
  bool dispatcher_idle = false;
  int64_t unrecorded_jobs = 0;  // finished, end not written to the store yet (retried)
};

class JobObserver;  // job_observer.h: buffers one running job's progress
struct JobProgress;

class Scheduler {
 public:
  // Validates `options` (INVALID_ARGUMENT naming the field), requeues jobs left RUNNING in
  // `store` by a previous process, loads the queued jobs, and starts dispatching. `store` and
  // `runner` are not owned and must outlive the scheduler. Store errors propagate.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const SchedulerOptions& options,
                                                           store::Store* store, JobRunner* runner);

  // Calls Shutdown().
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job and returns it (state QUEUED). First fills defaults (ApplyJobSpecDefaults), then
  // checks, in order: the spec's fields (ValidateJobSpecFields); gpus (-1 = one GPU if the server
  // has any, else 0) above the GPUs in the inventory; ranks (0 = gpus, or 1 on the CPU) other than
  // gpus when gpus > 0 ("ranks: 3 must equal gpus (2): ..."), or above the inventory's CPU slots
  // when gpus = 0 and ranks > 1 ("ranks: 3 needs 3 CPU slots but this server has 2 (attuned
  // --slots-per-device)"), all INVALID_ARGUMENT naming the field; a job with the same non-empty
  // (owner, request_id) already exists: that job is returned and nothing else happens when its spec
  // (after defaults) is the same, ALREADY_EXISTS naming it when not; the runner's Check
  // of the files (INVALID_ARGUMENT from it propagates; RESOURCE_EXHAUSTED when it runs out of
  // memory, INTERNAL when it throws anything else); a CPU job whose estimated memory (times its
  // ranks) is more than the host has available: RESOURCE_EXHAUSTED (memory_admission.h); the queue
  // is full: RESOURCE_EXHAUSTED; the scheduler is shutting down: UNAVAILABLE; store errors
  // propagate (nothing is queued then). Blocks while the runner reads the job's files.
  absl::StatusOr<store::Job> Submit(const JobSpec& spec, const std::string& request_id,
                                    const std::string& owner);

  // The job with this id; NOT_FOUND when there is none.
  absl::StatusOr<store::Job> Get(const std::string& id);

  // One page of jobs, newest first (see store::Store::ListJobs).
  absl::StatusOr<store::JobPage> List(const store::ListJobsQuery& query);

  // Cancels a job and returns it. A QUEUED job becomes CANCELLED at once. A RUNNING job is asked
  // to stop and becomes CANCELLED after its current step; the job returned is still RUNNING
  // then. NOT_FOUND for an unknown id; FAILED_PRECONDITION for a job that already finished (also
  // one whose end is not recorded yet); a store error when the cancellation cannot be recorded
  // (the job stays queued).
  absl::StatusOr<store::Job> Cancel(const std::string& id);

  // Pauses a job and returns it (scheduler_pause.cc). A QUEUED job becomes PAUSED at once. A
  // RUNNING job is asked to stop after its current step (it checkpoints, frees its devices and
  // becomes PAUSED); the job returned is still RUNNING then. A PAUSED job is returned as it is.
  // Paused jobs keep their queue order (their place) and stay paused across restarts. NOT_FOUND
  // for an unknown id; FAILED_PRECONDITION for a job that has finished or is being cancelled; a
  // store error when the pause cannot be recorded (the job stays queued).
  absl::StatusOr<store::Job> Pause(const std::string& id);

  // Queues a PAUSED job again at its place and returns it (state QUEUED); it resumes from its
  // checkpoint. NOT_FOUND for an unknown id; FAILED_PRECONDITION for a job that is not PAUSED
  // (or whose pause is not recorded yet); a store error when it cannot be recorded (the job
  // stays paused).
  absl::StatusOr<store::Job> Resume(const std::string& id);

  // Deletes a finished job (SUCCEEDED, FAILED or CANCELLED): its artifact directory
  // (<artifacts_dir>/jobs/<id>) and its rows in the store (job, events and checkpoint records,
  // in one transaction); returns the bytes of the files removed. The directory is first moved
  // aside, so a store error puts it back and leaves the job as it was. A watcher of the job is
  // woken and gets NOT_FOUND. NOT_FOUND for an unknown id; FAILED_PRECONDITION naming the state
  // for a job that is queued or running, or has ended without its end recorded yet ("job X is
  // RUNNING; cancel it first"); INTERNAL naming the path when the moved-aside files cannot be
  // removed (the job's rows are gone by then). scheduler_deletion.cc.
  absl::StatusOr<int64_t> Delete(const std::string& id);

  // The bytes of the files under the job's artifact directory now (0 before its first
  // checkpoint). Reads the directory tree on each call: a stat per file. INTERNAL naming the
  // path when it cannot be read. Does not check that the job exists. scheduler_deletion.cc.
  absl::StatusOr<int64_t> ArtifactBytes(const std::string& id) const;

  // The job's events with sequence > after_sequence (EventHub::Wait): at most `max_events`
  // (<= 0 = no limit), blocking up to `timeout` for new ones. NOT_FOUND for an unknown job;
  // UNAVAILABLE once the scheduler is shutting down. Never delays a training thread.
  absl::StatusOr<std::vector<store::JobEvent>> WaitForEvents(const std::string& job_id,
                                                             int64_t after_sequence, int max_events,
                                                             absl::Duration timeout);

  // Stops dispatching and rejects new submissions, asks every running job to stop after its
  // current step (the engine checkpoints), waits for them to return, and leaves them QUEUED so the
  // next process resumes them. Idempotent; blocks until every job thread has ended.
  void Shutdown();

  // Counts by state, the queue length, running jobs with their latest metrics and artifact bytes
  // (a stat per file of their directories, read after mu_ is released), and device use. Store
  // errors propagate.
  absl::StatusOr<SchedulerStats> Stats();

  const SchedulerOptions& options() const { return options_; }

 private:
  struct QueuedJob {
    int priority = 0;
    int64_t order = 0;  // submission order: from the store's order at start, then ascending
    std::string id;
    int gpus = 0;
    int ranks = 1;  // processes, one per slot (RanksOf: never 0 here)
    absl::Time not_before = absl::InfinitePast();  // a failed start is retried after this
    std::string owner;                             // the tenant
    int64_t share_rank = 0;                        // fair-share turn, recomputed on every dispatch
    int64_t share_tiebreak = 0;  // its owner's last start (-1 = never), for equal turns
    bool quota_noted = false, share_noted = false;   // its waiting events: a limit, no sharing
    absl::Time preempted_at = absl::InfinitePast();  // its last preemption
    TrainSpec train;                                 // for SchedulerOptions::share_base
  };
  // A job that holds devices. Owned by running_, then by finished_ until its thread is joined;
  // only the dispatcher thread destroys it (after the join), so a raw pointer held by its own
  // thread or under mu_ stays valid.
  struct RunningJob {
    QueuedJob queued;        // what it was in the queue (to put it back if it cannot start)
    store::Job job;          // as last written (state RUNNING), with its progress; under mu_
    std::vector<int> slots;  // from devices_.Acquire: one device index per rank, may repeat
    // SchedulerOptions::share_base: the job whose slots it trains on; it holds none of its own
    // then. Empty when it acquired its slots.
    std::string base_host;
    std::unique_ptr<JobObserver> observer;
    std::thread thread;
    bool started = false;      // its thread runs; under mu_
    std::string preempted_by;  // the job it stops for (StopReason::kPreempt); under mu_
    bool crashed = false;      // its training threw (RunJob): a crash, retried by max_retries
    // Store writes that failed, retried on each flush; under flush_mu_.
    std::vector<store::JobEvent> unrecorded_events;
    std::vector<store::CheckpointRecord> unrecorded_checkpoints;
    std::vector<int64_t> unrecorded_deletions;
  };
  // A finished job whose end the store has not taken yet.
  struct UnrecordedEnd {
    store::Job job;
    std::vector<store::JobEvent> events;
    std::vector<store::CheckpointRecord> checkpoints;
    std::vector<int64_t> deletions;
    std::string error;  // the last write error
  };

  Scheduler(const SchedulerOptions& options, DeviceInventory devices, store::Store* store,
            JobRunner* runner);

  int64_t NowUs() { return clock_->NowUs(); }
  absl::Status LoadQueue();
  // A deletion a crash interrupted (scheduler_deletion.cc): a jobs/.deleting-<id> directory is
  // removed when the job's rows are gone, and moved back to jobs/<id> when they are not.
  void RecoverDeletions();
  absl::Status ResolveDevices(JobSpec* spec) const;
  absl::StatusOr<engine::SpecCheck> CheckFiles(const TrainSpec& spec);
  absl::StatusOr<store::Job> InsertQueued(store::Job job);
  // Records a job taken out of queue_ (or paused_, when `paused`) as CANCELLED; on a store
  // error it goes back where it was.
  absl::StatusOr<store::Job> CancelQueued(QueuedJob queued, bool paused = false);
  // scheduler_pause.cc
  absl::StatusOr<store::Job> PauseQueued(QueuedJob queued);

  // scheduler_dispatch.cc
  void DispatchLoop();
  // Starts every queued job that fits the free slots now.
  void DispatchOnce();
  // Appends a "waiting" warning to `waiting` for each job first held back by a tenant limit.
  std::vector<RunningJob*> TakeStartable(std::vector<store::JobEvent>* waiting)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // scheduler_preempt.cc: asks the fewest lower-priority running jobs that free enough slots to
  // make room for the first job of queue_ that could not start (queue_ ordered, nothing
  // startable left); none when they would not free enough.
  void PreemptForLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sorts queue_ by priority, then fair-share turn, then submission.
  void OrderQueue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits until a dispatch is due: a change, the earliest retry, or shutdown.
  void AwaitDispatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads the job and records it RUNNING; false (and the job failed or back in the queue) when
  // the store does not let it start.
  bool RecordStart(RunningJob* running);
  // Frees what `running` took and retires it; with kRetry it goes back to the queue (or is
  // cancelled there, if a cancel came meanwhile) to be tried after retry_interval.
  enum class Requeue { kNo, kRetry };
  void Unstart(RunningJob* running, Requeue requeue);
  void FailUnreadable(RunningJob* running, const absl::Status& read_error);
  // Body of a job's thread: runs `job` and records how it ended.
  void RunJob(RunningJob* running, store::Job job);
  void FinishJob(RunningJob* running, const absl::StatusOr<engine::TrainResult>& result);
  // Moves `running` from running_ to finished_ and frees its devices. Caller holds mu_.
  void RetireLocked(RunningJob* running) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Shared-base groups (scheduler_share.cc): a running job whose slot `queued` can share, else
  // nullptr and *refused says why one refused; the slots of a job that ends go to those on them.
  RunningJob* ShareHostLocked(const QueuedJob& queued, std::string* refused)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseSlotsLocked(RunningJob* running) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void JoinFinished();

  // scheduler_progress.cc
  void PublishLoop();
  // Writes every running job's buffered progress to the store, and retries failed writes.
  void FlushProgress() ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  // Records `running`'s new checkpoints and forgets the pruned ones; keeps what failed for the
  // next flush and says so in a warning event. Returns the first error.
  void RecordCheckpoints(RunningJob* running, const JobProgress& progress,
                         std::vector<store::JobEvent>* events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  // Writes an ended job's record; on failure keeps it in unrecorded_ for RetryUnrecorded.
  void RecordEnd(UnrecordedEnd end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  absl::Status TryRecordEnd(UnrecordedEnd& end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  void RetryUnrecorded() ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);

  // Constant after construction.
  const SchedulerOptions options_;
  Clock* const clock_;
  store::Store* const store_;
  JobRunner* const runner_;
  const int gpu_count_;  // GPUs in the inventory
  const int cpu_slots_;  // slots of CPU devices in the inventory
  EventHub events_;      // thread-safe on its own

  // Held for the whole of a Delete, so that two deletions of one job cannot interleave their
  // moves of its directory. Taken before every other lock here.
  absl::Mutex delete_mu_ ABSL_ACQUIRED_BEFORE(flush_mu_);

  // Held while writing a running job's row or events, so that a job's events reach the store in
  // the order they happened.
  absl::Mutex flush_mu_;
  std::map<std::string, UnrecordedEnd> unrecorded_ ABSL_GUARDED_BY(flush_mu_);

  absl::Mutex mu_ ABSL_ACQUIRED_AFTER(flush_mu_);
  absl::CondVar dispatch_cv_;  // signalled when the queue or the free slots change
  DeviceInventory devices_ ABSL_GUARDED_BY(mu_);
  std::vector<QueuedJob> queue_ ABSL_GUARDED_BY(mu_);
  // PAUSED jobs, as they were in the queue (their order is their place when resumed).
  std::map<std::string, QueuedJob> paused_ ABSL_GUARDED_BY(mu_);
  int pending_submits_ ABSL_GUARDED_BY(mu_) = 0;  // Submits between queue check and insert
  int64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::unique_ptr<RunningJob>> running_ ABSL_GUARDED_BY(mu_);
  std::list<std::unique_ptr<RunningJob>> finished_ ABSL_GUARDED_BY(mu_);  // to be joined
  std::map<std::string, std::string> ending_ ABSL_GUARDED_BY(mu_);        // id -> end not recorded
  // Fair share (OrderQueue): jobs started per owner, the start number of each owner's latest
  // start, and the owners with queued or running jobs at the previous dispatch.
  std::map<std::string, int64_t> owner_turns_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> owner_last_start_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> busy_owners_ ABSL_GUARDED_BY(mu_);
  int64_t starts_ ABSL_GUARDED_BY(mu_) = 0;
  bool dispatcher_idle_ ABSL_GUARDED_BY(mu_) = false;
  bool dispatch_pending_ ABSL_GUARDED_BY(mu_) = true;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar publish_cv_;  // wakes the publisher early to stop
  bool publisher_stop_ ABSL_GUARDED_BY(mu_) = false;

  std::thread dispatcher_;
  std::thread publisher_;
};

}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_SCHEDULER_H_
