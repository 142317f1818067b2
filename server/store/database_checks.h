// The checks Store::Open makes before it trusts a database file: that an existing file is not
// empty, and that SQLite finds no damage in it (`PRAGMA quick_check`). A file that fails either
// is refused, so that attuned never starts on a history that is silently empty or that fails
// every list later ("database disk image is malformed"). Messages name the file and say what
// to do. Internal to the store; stateless and thread-safe.
#ifndef ATTUNE_SERVER_STORE_DATABASE_CHECKS_H_
#define ATTUNE_SERVER_STORE_DATABASE_CHECKS_H_

#include <sqlite3.h>

#include <string>

#include "absl/status/status.h"

namespace attune::store {

// FAILED_PRECONDITION when `db_path` exists, is 0 bytes long and has no non-empty write-ahead
// log beside it: SQLite would take it as a fresh, empty history, and a history truncated by a
// full disk or a bad copy would be forgotten without a word. OK when the file is missing (a
// fresh data dir) or not empty.
absl::Status CheckDatabaseNotEmpty(const std::string& db_path);

// DATA_LOSS when `PRAGMA quick_check` on the open connection `db` reports damage or cannot read
// the file, e.g. "database '/data/attune.db' is damaged (database disk image is malformed);
// attuned will not start on it: restore it from a backup, or move it (with its -wal and -shm
// files) aside to start with an empty job history". OK otherwise.
absl::Status CheckDatabaseIntegrity(sqlite3* db, const std::string& db_path);

}  // namespace attune::store

#endif  // ATTUNE_SERVER_STORE_DATABASE_CHECKS_H_
