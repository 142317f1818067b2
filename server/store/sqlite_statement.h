// A thin RAII layer over the sqlite3 C API, used only inside the store.
//
// `Statement` owns one prepared statement: bind parameters by 1-based index, step through rows,
// read columns. `Exec` runs SQL without results, and `Transaction` wraps BEGIN IMMEDIATE /
// COMMIT, rolling back when it goes out of scope uncommitted. Errors become INTERNAL statuses
// carrying SQLite's message (ALREADY_EXISTS for constraint violations, RESOURCE_EXHAUSTED naming
// the database's directory for SQLITE_FULL, "database or disk is full"). Not thread-safe: the
// store serialises use of its connection.
#ifndef ATTUNE_SERVER_STORE_SQLITE_STATEMENT_H_
#define ATTUNE_SERVER_STORE_SQLITE_STATEMENT_H_

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace attune::store {

// A status for SQLite result code `rc` on `db`, prefixed by `what`.
absl::Status SqliteError(sqlite3* db, int rc, const std::string& what);

// Runs one or more SQL statements that return no rows.
absl::Status Exec(sqlite3* db, const std::string& sql);

class Statement {
 public:
  // Prepares `sql`; INTERNAL (with the SQL's start) on a syntax error.
  static absl::StatusOr<Statement> Prepare(sqlite3* db, const std::string& sql);

  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, const std::string& value);
  Statement& Bind(int index, const char* value) { return Bind(index, std::string(value)); }
  Statement& BindNull(int index);
  Statement& Bind(int index, const std::optional<double>& value);

  // Advances to the next row: true when a row is available, false when done; an error status
  // otherwise (binding errors are reported here too).
  absl::StatusOr<bool> Step();
  // Steps to completion, for statements that return no rows.
  absl::Status Run();

  int64_t Int(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;  // first binding error, reported by Step()
};

// BEGIN IMMEDIATE on construction (see Begin); ROLLBACK on destruction unless committed.
class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(sqlite3* db);
  Transaction(Transaction&& other) noexcept : db_(other.db_), open_(other.open_) {
    other.open_ = false;
  }
  Transaction(const Transaction&) = delete;
  ~Transaction();
  absl::Status Commit();

 private:
  explicit Transaction(sqlite3* db) : db_(db), open_(true) {}
  sqlite3* db_;
  bool open_;
};

}  // namespace attune::store

#endif  // ATTUNE_SERVER_STORE_SQLITE_STATEMENT_H_
