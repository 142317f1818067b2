#include "server/store/event_rows.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/store/job_row.h"

namespace attune::store {

const char kEventColumns[] =
    "sequence, time_us, type, state, message, metrics_json, step, path, "
    "bytes, sha256";

absl::Status CheckJobExists(sqlite3* db, const std::string& id) {
  ASSIGN_OR_RETURN(Statement select, Statement::Prepare(db, "SELECT 1 FROM jobs WHERE id = ?"));
  select.Bind(1, id);
  ASSIGN_OR_RETURN(bool row, select.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("job '", id, "' not found"));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> LastSequenceLocked(sqlite3* db, const std::string& job_id) {
  ASSIGN_OR_RETURN(Statement select,
                   Statement::Prepare(db,
                                      "SELECT COALESCE(MAX(sequence), 0) FROM job_events "
                                      "WHERE job_id = ?"));
  select.Bind(1, job_id);
  ASSIGN_OR_RETURN(bool row, select.Step());
  return row ? select.Int(0) : 0;
}

// Appends `event`, setting its sequence. The caller holds a transaction.
absl::Status AppendEventLocked(sqlite3* db, JobEvent& event) {
  RETURN_IF_ERROR(CheckJobExists(db, event.job_id));
  ASSIGN_OR_RETURN(int64_t last, LastSequenceLocked(db, event.job_id));
  event.sequence = last + 1;
  ASSIGN_OR_RETURN(Statement insert,
                   Statement::Prepare(db,
                                      "INSERT INTO job_events (job_id, sequence, time_us, type, "
                                      "state, message, metrics_json, step, path, bytes, sha256) "
                                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  insert.Bind(1, event.job_id)
      .Bind(2, event.sequence)
      .Bind(3, event.time_us)
      .Bind(4, EventTypeName(event.type))
      .Bind(5, JobStateName(event.state))
      .Bind(6, event.message)
      .Bind(7, EventDetailsToJson(event))
      .Bind(8, event.step)
      .Bind(9, event.path)
      .Bind(10, event.bytes)
      .Bind(11, event.sha256);
  return insert.Run();
}

absl::StatusOr<JobEvent> ReadEvent(const Statement& row, const std::string& job_id) {
  JobEvent event;
  event.job_id = job_id;
  event.sequence = row.Int(0);
  event.time_us = row.Int(1);
  ASSIGN_OR_RETURN(event.type, ParseEventType(row.Text(2)));
  ASSIGN_OR_RETURN(event.state, ParseJobState(row.Text(3)));
  event.message = row.Text(4);
  event.step = row.Int(6);
  event.path = row.Text(7);
  event.bytes = row.Int(8);
  event.sha256 = row.Text(9);
  EventDetailsFromJson(row.Text(5), &event);
  return event;
}

absl::StatusOr<std::vector<JobEvent>> ReadEvents(Statement& select, const std::string& job_id) {
  std::vector<JobEvent> events;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(JobEvent event, ReadEvent(select, job_id));
    events.push_back(std::move(event));
  }
  return events;
}

}  // namespace attune::store
