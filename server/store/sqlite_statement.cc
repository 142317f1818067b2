#include "server/store/sqlite_statement.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace attune::store {

namespace {

// RESOURCE_EXHAUSTED for a full disk (SQLITE_FULL), naming the database's directory.
absl::Status DiskFull(sqlite3* db, const std::string& message) {
  const char* file = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
  std::string dir = file != nullptr ? file : "";
  dir = dir.substr(0, dir.find_last_of('/'));  // the whole name when it has no '/'
  return absl::ResourceExhaustedError(absl::StrCat(message, "; the data directory '", dir,
                                                   "' is full: free space there, then retry"));
}

}  // namespace

absl::Status SqliteError(sqlite3* db, int rc, const std::string& what) {
  std::string message = absl::StrCat(what, ": ", sqlite3_errstr(rc));
  if (db != nullptr && sqlite3_errcode(db) == rc)
    absl::StrAppend(&message, " (", sqlite3_errmsg(db), ")");
  if ((rc & 0xff) == SQLITE_CONSTRAINT) return absl::AlreadyExistsError(message);
  if ((rc & 0xff) == SQLITE_FULL) return DiskFull(db, message);
  return absl::InternalError(message);
}

absl::Status Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string message = absl::StrCat("sqlite: ", error != nullptr ? error : sqlite3_errstr(rc),
                                     " in: ", sql.substr(0, 80));
  sqlite3_free(error);
  if ((rc & 0xff) == SQLITE_FULL) return DiskFull(db, message);
  return absl::InternalError(message);
}

absl::StatusOr<Statement> Statement::Prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteError(db, rc, absl::StrCat("preparing '", sql.substr(0, 80), "'"));
  }
  return Statement(db, stmt);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)), bind_rc_(other.bind_rc_) {}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Statement& Statement::Bind(int index, double value) {
  int rc = sqlite3_bind_double(stmt_, index, value);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Statement& Statement::Bind(int index, const std::string& value) {
  int rc = sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                             SQLITE_TRANSIENT);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Statement& Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Statement& Statement::Bind(int index, const std::optional<double>& value) {
  return value.has_value() ? Bind(index, *value) : BindNull(index);
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_rc_ != SQLITE_OK) return SqliteError(db_, bind_rc_, "binding a parameter");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc,
                     absl::StrCat("running '", std::string(sqlite3_sql(stmt_)).substr(0, 80), "'"));
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::Double(int column) const { return sqlite3_column_double(stmt_, column); }
bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}
std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt_, column));
}

absl::StatusOr<Transaction> Transaction::Begin(sqlite3* db) {
  absl::Status status = Exec(db, "BEGIN IMMEDIATE");
  if (!status.ok()) return status;
  return Transaction(db);
}

Transaction::~Transaction() {
  if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

absl::Status Transaction::Commit() {
  absl::Status status = Exec(db_, "COMMIT");
  if (status.ok()) open_ = false;
  return status;
}

}  // namespace attune::store
