#include "server/store/database_checks.h"

#include <sys/stat.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "server/store/sqlite_statement.h"

namespace attune::store {
namespace {

// What to do with a database attuned will not open; the job files under jobs/ are not in it.
constexpr char kMoveAside[] =
    "restore it from a backup, or move it (with its -wal and -shm files) aside to start with an "
    "empty job history";

}  // namespace

absl::Status CheckDatabaseNotEmpty(const std::string& db_path) {
  struct stat db_stat, wal_stat;
  if (stat(db_path.c_str(), &db_stat) != 0 || db_stat.st_size != 0) return absl::OkStatus();
  const std::string wal = db_path + "-wal";
  if (stat(wal.c_str(), &wal_stat) == 0 && wal_stat.st_size != 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "database '", db_path,
      "' is empty (0 bytes) and would be treated as a fresh job history; attuned will not "
      "start on it: remove the file to start afresh, or restore it from a backup"));
}

absl::Status CheckDatabaseIntegrity(sqlite3* db, const std::string& db_path) {
  std::string problem;
  absl::StatusOr<Statement> check = Statement::Prepare(db, "PRAGMA quick_check(1)");
  absl::StatusOr<bool> row = check.ok() ? check->Step() : check.status();
  if (!row.ok()) {
    problem = std::string(row.status().message());
  } else if (*row && check->Text(0) != "ok") {
    problem = check->Text(0);
  }
  if (problem.empty()) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("database '", db_path, "' is damaged (", problem,
                                          "); attuned will not start on it: ", kMoveAside));
}

}  // namespace attune::store
