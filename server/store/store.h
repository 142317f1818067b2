// Durable storage of jobs, their event logs and their checkpoint records in one SQLite database.
//
// The database runs in WAL mode with foreign keys on and a busy timeout, and its schema is
// versioned: the `schema_version` table records every migration applied, and `Open` applies the
// missing ones in order, each in its own transaction, so opening an up-to-date database changes
// nothing. Artifacts (checkpoints) live as files under the data directory; the store keeps only
// their paths, sizes and checksums.
//
// Jobs carry an `owner` (the tenant); request ids are unique per owner. Authentication is not
// implemented yet: today every job's owner is "" and a later migration can add a tenants table.
//
// Thread safety: every method is thread-safe. One connection is shared, guarded by a mutex; each
// method is one short transaction.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(data_dir + "/attune.db"));
//   ASSIGN_OR_RETURN(Job job, store->InsertJob(job));
//   ASSIGN_OR_RETURN(int64_t seq, store->AppendEvent(event));
#ifndef ATTUNE_SERVER_STORE_STORE_H_
#define ATTUNE_SERVER_STORE_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/records.h"

struct sqlite3;

namespace attune::store {

struct StoreOptions {
  // How long a write waits for another connection's lock (another process holding the database)
  // before it fails with UNAVAILABLE.
  absl::Duration busy_timeout = absl::Seconds(5);
  // Test seam: when > 0, the database may grow to at most this many pages (PRAGMA
  // max_page_count), and a write past it fails as on a full disk. 0 = no limit.
  int64_t max_page_count = 0;
};

// A fresh job id, "j-" and 16 hex digits. Thread-safe.
std::string NewJobId();

struct ListJobsQuery {
  std::optional<JobState> state;     // only jobs in this state; nullopt = every state
  std::optional<std::string> owner;  // only this owner's jobs; nullopt = every owner
  // Only jobs whose spec has every one of these labels (key, exact value); empty = no filter.
  std::vector<std::pair<std::string, std::string>> labels;
  int page_size = 50;      // 1..1000; values outside are clamped
  std::string page_token;  // "" = first page; else a next_page_token from a previous call
};

struct JobPage {
  std::vector<Job> jobs;        // newest first (by submission order)
  std::string next_page_token;  // "" when this is the last page
};

class Store {
 public:
  // Opens (creating if missing) the database at `db_path` and brings its schema up to date.
  // The parent directory must exist. Returns INTERNAL when SQLite cannot open or migrate the
  // file, FAILED_PRECONDITION when the database was written by a newer attune (its schema version
  // is higher than LatestSchemaVersion()) or when the file exists but is empty (0 bytes, no WAL:
  // refused rather than silently taken as a fresh history), DATA_LOSS when `PRAGMA quick_check`
  // finds it damaged. Those messages name the file and say what to do.
  //
  // Any write that fails because the disk (or the database's size limit) is full returns
  // RESOURCE_EXHAUSTED naming the database's directory; nothing of that call is written.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& db_path,
                                                     const StoreOptions& options = {});

  // The schema version this binary migrates to.
  static int LatestSchemaVersion();

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The schema version recorded in the database (== LatestSchemaVersion() after Open).
  absl::StatusOr<int> SchemaVersion();

  // --- Jobs -------------------------------------------------------------------------------------

  // Inserts `job`, assigning a fresh id when job.id is empty, and returns the stored job.
  // Errors: ALREADY_EXISTS when job.request_id is non-empty and (owner, request_id) is taken; the
  // message then contains the existing job's id, and FindByRequestId returns it. ALREADY_EXISTS
  // also when job.id is taken.
  // With `events`, they are appended to the new job's log in the same transaction (their
  // job_id is set to the job's, their sequences assigned in place).
  absl::StatusOr<Job> InsertJob(const Job& job, std::vector<JobEvent>* events = nullptr);

  // The job with this id; NOT_FOUND when there is none. Reading a job never fails on its own
  // row: one whose stored spec or state is unreadable comes back FAILED with Job::unreadable
  // set (records.h); the same holds for FindByRequestId, ListJobs and JobsInState.
  absl::StatusOr<Job> GetJob(const std::string& id);

  // The job `owner` submitted with `request_id`; NOT_FOUND when there is none.
  absl::StatusOr<Job> FindByRequestId(const std::string& owner, const std::string& request_id);

  // One page of jobs, newest first. The page token is the position of the last job returned, so
  // pages stay stable while new jobs are inserted. INVALID_ARGUMENT for a malformed page_token.
  absl::StatusOr<JobPage> ListJobs(const ListJobsQuery& query);

  // Every job whose row says `state`, oldest first (the order the scheduler queues them); an
  // unreadable one among them is returned with Job::unreadable set and state FAILED.
  absl::StatusOr<std::vector<Job>> JobsInState(JobState state);
  // The same for any of `states` (at least one), in one submission order.
  absl::StatusOr<std::vector<Job>> JobsInStates(const std::vector<JobState>& states);

  // Number of jobs in each state (states with no jobs are absent).
  absl::StatusOr<std::map<JobState, int64_t>> CountJobsByState();

  // Overwrites every mutable field of the stored job with `job`'s (id, request_id, owner, spec
  // and created_us are never changed). NOT_FOUND when job.id is unknown.
  absl::Status UpdateJob(const Job& job);

  // UpdateJob(job) and AppendEvents(events) in one transaction: either both happen or neither.
  // Returns the events with their sequences assigned.
  absl::StatusOr<std::vector<JobEvent>> UpdateJobAndAppendEvents(const Job& job,
                                                                 std::vector<JobEvent> events);

  // Marks the job FAILED with `error` and `finished_us` without reading its row (for a job whose
  // stored spec cannot be read), and appends `events` in the same transaction. Returns the
  // events with their sequences. NOT_FOUND when the job is unknown.
  absl::StatusOr<std::vector<JobEvent>> FailJobAndAppendEvents(const std::string& id,
                                                               const std::string& error,
                                                               int64_t finished_us,
                                                               std::vector<JobEvent> events);

  // Deletes a finished job's row, its events and its checkpoint records in one transaction
  // (the files are the caller's to delete). NOT_FOUND when the job is unknown;
  // FAILED_PRECONDITION, naming the state, when its row is not in a terminal state ("job X is
  // RUNNING; cancel it first"), and then nothing is deleted. Defined in store_lifecycle.cc.
  absl::Status DeleteJob(const std::string& id);

  // Start-up recovery after a crash or shutdown: every RUNNING job becomes QUEUED (started_us
  // and devices kept as they were), with a kStateChanged event saying `reason`. Returns the ids
  // of the jobs requeued, oldest first.
  absl::StatusOr<std::vector<std::string>> RequeueRunningJobs(const std::string& reason,
                                                              int64_t now_us);

  // --- Events -----------------------------------------------------------------------------------

  // Appends `event` to its job's log, assigning the next sequence (1 for the first event) in
  // the same transaction, and returns that sequence. NOT_FOUND when event.job_id is unknown.
  absl::StatusOr<int64_t> AppendEvent(const JobEvent& event);

  // Appends several events (for one or several jobs) in one transaction, in order. Returns them
  // with their sequences assigned. NOT_FOUND (and nothing written) if any job_id is unknown.
  absl::StatusOr<std::vector<JobEvent>> AppendEvents(std::vector<JobEvent> events);

  // The events of `job_id` with sequence > after_sequence, ascending, at most `limit` (<= 0 =
  // no limit). NOT_FOUND when the job is unknown.
  absl::StatusOr<std::vector<JobEvent>> EventsAfter(const std::string& job_id,
                                                    int64_t after_sequence, int limit);

  // The highest sequence in the job's log (0 when it has none). NOT_FOUND for an unknown job.
  absl::StatusOr<int64_t> LastEventSequence(const std::string& job_id);

  // --- Checkpoints ------------------------------------------------------------------------------

  // Records a checkpoint; a record for the same (job_id, step) is replaced. NOT_FOUND when the
  // job is unknown.
  absl::Status InsertCheckpoint(const CheckpointRecord& checkpoint);

  // The job's checkpoints, ascending by step (empty when it has none).
  absl::StatusOr<std::vector<CheckpointRecord>> ListCheckpoints(const std::string& job_id);

  // The job's kMetrics and kEval events at the steps of its checkpoint records, ascending by
  // sequence (a resumed job can have two events for one step; the later one is the one that
  // counts). NOT_FOUND when the job is unknown. Defined in store_lifecycle.cc.
  absl::StatusOr<std::vector<JobEvent>> CheckpointStepEvents(const std::string& job_id);

  // Forgets one checkpoint record (the files are the caller's to delete). NOT_FOUND when there
  // is no such record.
  absl::Status DeleteCheckpoint(const std::string& job_id, int64_t step);

 private:
  explicit Store(sqlite3* db);

  // Constant after construction; the connection itself is used only under mu_ (it is not
  // annotated ABSL_GUARDED_BY because the pointer is read freely; what it points to is not).
  sqlite3* const db_;
  absl::Mutex mu_;
};

}  // namespace attune::store

#endif  // ATTUNE_SERVER_STORE_STORE_H_
