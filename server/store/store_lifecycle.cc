// The store's operations for a job's end of life: the events behind its checkpoints (what
// ListCheckpoints reports) and deleting a finished job with everything recorded about it.
#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/store/event_rows.h"
#include "server/store/sqlite_statement.h"
#include "server/store/store.h"

namespace attune::store {
namespace {

// FAILED_PRECONDITION unless job `id`'s stored state is terminal; NOT_FOUND for an unknown job.
// An unreadable state counts as FAILED, as ReadJob reports it.
absl::Status CheckTerminalLocked(sqlite3* db, const std::string& id) {
  ASSIGN_OR_RETURN(Statement select, Statement::Prepare(db, "SELECT state FROM jobs WHERE id = ?"));
  select.Bind(1, id);
  ASSIGN_OR_RETURN(bool row, select.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("job '", id, "' not found"));
  absl::StatusOr<JobState> state = ParseJobState(select.Text(0));
  if (!state.ok() || IsTerminal(*state)) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("job ", id, " is ", JobStateName(*state), "; cancel it first"));
}

}  // namespace

absl::Status Store::DeleteJob(const std::string& id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(db_));
  RETURN_IF_ERROR(CheckTerminalLocked(db_, id));
  // Children first, explicitly, so that the deletion does not depend on foreign-key cascades.
  for (const char* sql :
       {"DELETE FROM job_events WHERE job_id = ?", "DELETE FROM checkpoints WHERE job_id = ?",
        "DELETE FROM jobs WHERE id = ?"}) {
    ASSIGN_OR_RETURN(Statement remove, Statement::Prepare(db_, sql));
    RETURN_IF_ERROR(remove.Bind(1, id).Run());
  }
  return transaction.Commit();
}

absl::StatusOr<std::vector<JobEvent>> Store::CheckpointStepEvents(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckJobExists(db_, job_id));
  ASSIGN_OR_RETURN(Statement select,
                   Statement::Prepare(db_, absl::StrCat("SELECT ", kEventColumns,
                                                        " FROM job_events WHERE job_id = ?1 AND "
                                                        "type IN (?2, ?3) AND step IN (SELECT step "
                                                        "FROM checkpoints WHERE job_id = ?1) "
                                                        "ORDER BY sequence")));
  select.Bind(1, job_id)
      .Bind(2, EventTypeName(EventType::kMetrics))
      .Bind(3, EventTypeName(EventType::kEval));
  return ReadEvents(select, job_id);
}

}  // namespace attune::store
