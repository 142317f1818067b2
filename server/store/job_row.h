// How a store::Job maps onto a row of the `jobs` table, and the JSON columns' encodings.
//
// Internal to the store. Metrics are stored as in metrics_json.h, devices as a JSON array of
// strings, the spec as JobSpecToJson.
#ifndef ATTUNE_SERVER_STORE_JOB_ROW_H_
#define ATTUNE_SERVER_STORE_JOB_ROW_H_

#include <sqlite3.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/store/records.h"
#include "server/store/sqlite_statement.h"

namespace attune::store {

// The columns ReadJob expects, in order, for "SELECT <kJobColumns> FROM jobs".
extern const char kJobColumns[];

// The jobs.latest_metrics_json column: the newest step's and evaluation's metrics in one object.
std::string LatestMetricsToJson(const Job& job);
// Sets job->latest_step and job->latest_eval (job->last_step must be set). Unreadable text is
// skipped, never an error.
void LatestMetricsFromJson(const std::string& text, Job* job);

// The job_events.metrics_json column: the event's typed details (step or eval metrics, the
// checkpoint's `best`, a state change's devices).
std::string EventDetailsToJson(const JobEvent& event);
// Sets the details of `event` (its type and step must be set). Unreadable text is skipped.
void EventDetailsFromJson(const std::string& text, JobEvent* event);

std::vector<std::string> DevicesFromJson(const std::string& text);

// The job in the current row of a SELECT of kJobColumns. Never fails: when the stored spec or
// state is unreadable the job has a default spec, state FAILED, `unreadable` saying what could
// not be read and `error` the failure recorded for it (or, before one is, `unreadable`).
Job ReadJob(const Statement& row);

// Writes every mutable column of `job`'s row. NOT_FOUND when there is no such row. The caller
// holds the store's connection mutex (as for the functions below).
absl::Status UpdateJobLocked(sqlite3* db, const Job& job);

// ALREADY_EXISTS naming the job when (owner, request_id) is taken; OK for an empty request_id.
absl::Status CheckRequestIdFree(sqlite3* db, const std::string& owner,
                                const std::string& request_id);

// Inserts a new row for `job` with every column. The caller holds a transaction.
absl::Status InsertJobRowLocked(sqlite3* db, const Job& job);

}  // namespace attune::store

#endif  // ATTUNE_SERVER_STORE_JOB_ROW_H_
