#include "server/store/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "server/store/database_checks.h"
#include "server/store/event_rows.h"
#include "server/store/job_row.h"
#include "server/store/migrations.h"
#include "server/store/sqlite_statement.h"

namespace attune::store {
namespace {

using nlohmann::json;

// Runs a SELECT of kJobColumns and returns every row.
absl::StatusOr<std::vector<Job>> ReadJobs(Statement& select) {
  std::vector<Job> jobs;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    jobs.push_back(ReadJob(select));
  }
  return jobs;
}

absl::StatusOr<Job> GetJobLocked(sqlite3* db, const std::string& id) {
  ASSIGN_OR_RETURN(
      Statement select,
      Statement::Prepare(db, absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE id = ?")));
  select.Bind(1, id);
  ASSIGN_OR_RETURN(std::vector<Job> jobs, ReadJobs(select));
  if (jobs.empty()) return absl::NotFoundError(absl::StrCat("job '", id, "' not found"));
  return std::move(jobs[0]);
}

}  // namespace

int Store::LatestSchemaVersion() { return LatestMigration(); }

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& db_path,
                                                   const StoreOptions& options) {
  RETURN_IF_ERROR(CheckDatabaseNotEmpty(db_path));
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(db_path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(db, rc, absl::StrCat("opening database '", db_path, "'"));
    sqlite3_close(db);
    return absl::InternalError(status.message());
  }
  std::unique_ptr<Store> store(new Store(db));
  sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout)));
  RETURN_IF_ERROR(CheckDatabaseIntegrity(db, db_path));
  RETURN_IF_ERROR(Exec(db, "PRAGMA journal_mode = WAL"));
  RETURN_IF_ERROR(Exec(db, "PRAGMA synchronous = NORMAL"));
  RETURN_IF_ERROR(Exec(db, "PRAGMA foreign_keys = ON"));
  RETURN_IF_ERROR(Migrate(db));
  if (options.max_page_count > 0) {
    RETURN_IF_ERROR(Exec(db, absl::StrCat("PRAGMA max_page_count = ", options.max_page_count)));
  }
  return store;
}

Store::Store(sqlite3* db) : db_(db) {}

Store::~Store() { sqlite3_close(db_); }

absl::StatusOr<int> Store::SchemaVersion() {
  absl::MutexLock lock(&mu_);
  return CurrentSchemaVersion(db_);
}

absl::StatusOr<Job> Store::InsertJob(const Job& job, std::vector<JobEvent>* events) {
  absl::MutexLock lock(&mu_);
  Job stored = job;
  if (stored.id.empty()) stored.id = NewJobId();
  RETURN_IF_ERROR(CheckRequestIdFree(db_, stored.owner, stored.request_id));
  ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(db_));
  RETURN_IF_ERROR(InsertJobRowLocked(db_, stored));
  if (events != nullptr) {
    for (JobEvent& event : *events) {
      event.job_id = stored.id;
      RETURN_IF_ERROR(AppendEventLocked(db_, event));
    }
  }
  RETURN_IF_ERROR(transaction.Commit());
  return stored;
}

absl::StatusOr<Job> Store::GetJob(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return GetJobLocked(db_, id);
}

absl::StatusOr<Job> Store::FindByRequestId(const std::string& owner,
                                           const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement select,
                   Statement::Prepare(db_, absl::StrCat("SELECT ", kJobColumns,
                                                        " FROM jobs WHERE owner = ? AND "
                                                        "request_id = ?")));
  select.Bind(1, owner).Bind(2, request_id);
  ASSIGN_OR_RETURN(std::vector<Job> jobs, ReadJobs(select));
  if (jobs.empty()) {
    return absl::NotFoundError(absl::StrCat("no job with request_id '", request_id, "'"));
  }
  return std::move(jobs[0]);
}

absl::StatusOr<JobPage> Store::ListJobs(const ListJobsQuery& query) {
  int64_t before_seq = INT64_MAX;
  if (!query.page_token.empty() &&
      (!absl::SimpleAtoi(query.page_token, &before_seq) || before_seq < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_token: '", query.page_token, "' is not a token returned by a previous ListJobs"));
  }
  const int page_size = std::clamp(query.page_size, 1, 1000);
  std::string sql = absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE seq < ?1");
  if (query.state.has_value()) absl::StrAppend(&sql, " AND state = ?2");
  if (query.owner.has_value()) absl::StrAppend(&sql, " AND owner = ?3");
  for (size_t i = 0; i < query.labels.size(); ++i) {
    // Labels live in the spec's JSON object "labels"; the pair i binds ?(5+2i) and ?(6+2i).
    absl::StrAppend(&sql,
                    " AND EXISTS (SELECT 1 FROM json_each(spec_json, '$.labels') WHERE "
                    "json_each.key = ?",
                    5 + 2 * i, " AND json_each.value = ?", 6 + 2 * i, ")");
  }
  absl::StrAppend(&sql, " ORDER BY seq DESC LIMIT ?4");

  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement select, Statement::Prepare(db_, sql));
  select.Bind(1, before_seq);
  if (query.state.has_value()) select.Bind(2, JobStateName(*query.state));
  if (query.owner.has_value()) select.Bind(3, *query.owner);
  select.Bind(4, int64_t{page_size} + 1);
  for (size_t i = 0; i < query.labels.size(); ++i) {
    select.Bind(static_cast<int>(5 + 2 * i), query.labels[i].first);
    select.Bind(static_cast<int>(6 + 2 * i), query.labels[i].second);
  }
  JobPage page;
  int64_t last_seq = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    if (static_cast<int>(page.jobs.size()) == page_size) {
      page.next_page_token = absl::StrCat(last_seq);  // there is at least one more
      break;
    }
    last_seq = select.Int(18);
    page.jobs.push_back(ReadJob(select));
  }
  return page;
}

absl::StatusOr<std::vector<Job>> Store::JobsInState(JobState state) {
  return JobsInStates({state});
}

absl::StatusOr<std::vector<Job>> Store::JobsInStates(const std::vector<JobState>& states) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> marks(states.size(), "?");
  ASSIGN_OR_RETURN(
      Statement select,
      Statement::Prepare(db_, absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE state IN (",
                                           absl::StrJoin(marks, ", "), ") ORDER BY seq")));
  for (size_t i = 0; i < states.size(); ++i) {
    select.Bind(static_cast<int>(i + 1), JobStateName(states[i]));
  }
  return ReadJobs(select);
}

absl::StatusOr<std::map<JobState, int64_t>> Store::CountJobsByState() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement select,
                   Statement::Prepare(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state"));
  std::map<JobState, int64_t> counts;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    // An unreadable state is counted as FAILED, as ReadJob reports the job.
    absl::StatusOr<JobState> state = ParseJobState(select.Text(0));
    counts[state.ok() ? *state : JobState::kFailed] += select.Int(1);
  }
  return counts;
}

absl::Status Store::UpdateJob(const Job& job) {
  absl::MutexLock lock(&mu_);
  return UpdateJobLocked(db_, job);
}

absl::StatusOr<std::vector<JobEvent>> Store::UpdateJobAndAppendEvents(
    const Job& job, std::vector<JobEvent> events) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(db_));
  RETURN_IF_ERROR(UpdateJobLocked(db_, job));
  for (JobEvent& event : events) RETURN_IF_ERROR(AppendEventLocked(db_, event));
  RETURN_IF_ERROR(transaction.Commit());
  return events;
}

absl::StatusOr<std::vector<JobEvent>> Store::FailJobAndAppendEvents(const std::string& id,
                                                                    const std::string& error,
                                                                    int64_t finished_us,
                                                                    std::vector<JobEvent> events) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(db_));
  ASSIGN_OR_RETURN(Statement update,
                   Statement::Prepare(db_,
                                      "UPDATE jobs SET state = ?, error = ?, finished_us = ? "
                                      "WHERE id = ?"));
  RETURN_IF_ERROR(update.Bind(1, JobStateName(JobState::kFailed))
                      .Bind(2, error)
                      .Bind(3, finished_us)
                      .Bind(4, id)
                      .Run());
  if (sqlite3_changes(db_) == 0)
    return absl::NotFoundError(absl::StrCat("job '", id, "' not found"));
  for (JobEvent& event : events) RETURN_IF_ERROR(AppendEventLocked(db_, event));
  RETURN_IF_ERROR(transaction.Commit());
  return events;
}

absl::StatusOr<std::vector<std::string>> Store::RequeueRunningJobs(const std::string& reason,
                                                                   int64_t now_us) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(db_));
  ASSIGN_OR_RETURN(Statement select,
                   Statement::Prepare(db_, "SELECT id FROM jobs WHERE state = ? ORDER BY seq"));
  select.Bind(1, JobStateName(JobState::kRunning));
  std::vector<std::string> ids;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    ids.push_back(select.Text(0));
  }
  for (const std::string& id : ids) {
    ASSIGN_OR_RETURN(Statement update,
                     Statement::Prepare(db_, "UPDATE jobs SET state = ? WHERE id = ?"));
    RETURN_IF_ERROR(update.Bind(1, JobStateName(JobState::kQueued)).Bind(2, id).Run());
    JobEvent event;
    event.job_id = id;
    event.time_us = now_us;
    event.type = EventType::kStateChanged;
    event.state = JobState::kQueued;
    event.message = reason;
    RETURN_IF_ERROR(AppendEventLocked(db_, event));
  }
  RETURN_IF_ERROR(transaction.Commit());
  return ids;
}

absl::StatusOr<int64_t> Store::AppendEvent(const JobEvent& event) {
  ASSIGN_OR_RETURN(std::vector<JobEvent> appended, AppendEvents({event}));
  return appended[0].sequence;
}

absl::StatusOr<std::vector<JobEvent>> Store::AppendEvents(std::vector<JobEvent> events) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(db_));
  for (JobEvent& event : events) RETURN_IF_ERROR(AppendEventLocked(db_, event));
  RETURN_IF_ERROR(transaction.Commit());
  return events;
}

absl::StatusOr<std::vector<JobEvent>> Store::EventsAfter(const std::string& job_id,
                                                         int64_t after_sequence, int limit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckJobExists(db_, job_id));
  ASSIGN_OR_RETURN(Statement select,
                   Statement::Prepare(db_, absl::StrCat("SELECT ", kEventColumns,
                                                        " FROM job_events WHERE job_id = ? AND "
                                                        "sequence > ? ORDER BY sequence LIMIT ?")));
  select.Bind(1, job_id).Bind(2, after_sequence).Bind(3, int64_t{limit > 0 ? limit : -1});
  return ReadEvents(select, job_id);
}

absl::StatusOr<int64_t> Store::LastEventSequence(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckJobExists(db_, job_id));
  return LastSequenceLocked(db_, job_id);
}

absl::Status Store::InsertCheckpoint(const CheckpointRecord& checkpoint) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckJobExists(db_, checkpoint.job_id));
  ASSIGN_OR_RETURN(Statement insert,
                   Statement::Prepare(db_,
                                      "INSERT OR REPLACE INTO checkpoints (job_id, step, dir, "
                                      "bytes, sha256, created_us, eval_metric) "
                                      "VALUES (?, ?, ?, ?, ?, ?, ?)"));
  return insert.Bind(1, checkpoint.job_id)
      .Bind(2, checkpoint.step)
      .Bind(3, checkpoint.dir)
      .Bind(4, checkpoint.bytes)
      .Bind(5, checkpoint.sha256)
      .Bind(6, checkpoint.created_us)
      .Bind(7, checkpoint.eval_metric)
      .Run();
}

absl::StatusOr<std::vector<CheckpointRecord>> Store::ListCheckpoints(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement select,
                   Statement::Prepare(db_,
                                      "SELECT step, dir, bytes, sha256, created_us, eval_metric "
                                      "FROM checkpoints WHERE job_id = ? ORDER BY step"));
  select.Bind(1, job_id);
  std::vector<CheckpointRecord> checkpoints;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    CheckpointRecord record;
    record.job_id = job_id;
    record.step = select.Int(0);
    record.dir = select.Text(1);
    record.bytes = select.Int(2);
    record.sha256 = select.Text(3);
    record.created_us = select.Int(4);
    if (!select.IsNull(5)) record.eval_metric = select.Double(5);
    checkpoints.push_back(std::move(record));
  }
  return checkpoints;
}

absl::Status Store::DeleteCheckpoint(const std::string& job_id, int64_t step) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(
      Statement remove,
      Statement::Prepare(db_, "DELETE FROM checkpoints WHERE job_id = ? AND step = ?"));
  RETURN_IF_ERROR(remove.Bind(1, job_id).Bind(2, step).Run());
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat("job '", job_id, "' has no checkpoint at step ", step));
  }
  return absl::OkStatus();
}

}  // namespace attune::store
