// How a store::Job maps onto a row of the `jobs` table, and the JSON columns' encodings.
//
// Internal to the store. Metrics are stored as a JSON object of numbers (non-finite values are
// dropped: JSON has none), devices as a JSON array of strings, the spec as JobSpecToJson.
#ifndef ATTUNE_SERVER_STORE_JOB_ROW_H_
#define ATTUNE_SERVER_STORE_JOB_ROW_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/store/records.h"
#include "server/store/sqlite_statement.h"

namespace attune::store {

// The columns ReadJob expects, in order, for "SELECT <kJobColumns> FROM jobs".
extern const char kJobColumns[];

// A fresh job id, "j-" and 16 hex digits. Thread-safe.
std::string NewJobId();

std::string MetricsToJson(const std::map<std::string, double>& metrics);
// Unreadable text or non-number values are skipped, never an error.
std::map<std::string, double> MetricsFromJson(const std::string& text);
std::vector<std::string> DevicesFromJson(const std::string& text);

// The job in the current row of a SELECT of kJobColumns. INTERNAL when the stored spec or state
// is unreadable.
absl::StatusOr<Job> ReadJob(const Statement& row);

}  // namespace attune::store

#endif  // ATTUNE_SERVER_STORE_JOB_ROW_H_
