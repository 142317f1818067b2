// How a store::JobEvent maps onto a row of the `job_events` table. Internal to the store; every
// function needs the caller to hold the store's connection mutex (and, for writes, a
// transaction).
#ifndef ATTUNE_SERVER_STORE_EVENT_ROWS_H_
#define ATTUNE_SERVER_STORE_EVENT_ROWS_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/store/records.h"
#include "server/store/sqlite_statement.h"

namespace attune::store {

// The columns ReadEvent expects, in order, for "SELECT <kEventColumns> FROM job_events".
extern const char kEventColumns[];

// OK when job `id` exists; NOT_FOUND otherwise.
absl::Status CheckJobExists(sqlite3* db, const std::string& id);

// The highest sequence in the job's log, 0 when it has none.
absl::StatusOr<int64_t> LastSequenceLocked(sqlite3* db, const std::string& job_id);

// Appends `event`, setting its sequence to the next one. NOT_FOUND for an unknown job.
absl::Status AppendEventLocked(sqlite3* db, JobEvent& event);

// The event in the current row of a SELECT of kEventColumns. INTERNAL when its type or state
// is unreadable.
absl::StatusOr<JobEvent> ReadEvent(const Statement& row, const std::string& job_id);

// Every row `select` still returns, each read with ReadEvent, in order.
absl::StatusOr<std::vector<JobEvent>> ReadEvents(Statement& select, const std::string& job_id);

}  // namespace attune::store

#endif  // ATTUNE_SERVER_STORE_EVENT_ROWS_H_
