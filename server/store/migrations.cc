#include "server/store/migrations.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "server/store/sqlite_statement.h"

namespace attune::store {
namespace {

// Index i holds migration i + 1.
const std::vector<std::string>& Migrations() {
  static const auto* kMigrations = new std::vector<std::string>{
      // 1: jobs, their event logs and checkpoint records. `seq` orders jobs by submission and
      // backs the page tokens; `owner` is the tenant (empty until authentication exists).
      R"sql(
      CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL DEFAULT '',
        request_id TEXT,  -- NULL when the client gave none
        spec_json TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        gpus INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        created_us INTEGER NOT NULL DEFAULT 0,
        started_us INTEGER NOT NULL DEFAULT 0,
        finished_us INTEGER NOT NULL DEFAULT 0,
        devices_json TEXT NOT NULL DEFAULT '[]',
        latest_metrics_json TEXT NOT NULL DEFAULT '{}',
        trainable_parameters INTEGER NOT NULL DEFAULT 0,
        total_parameters INTEGER NOT NULL DEFAULT 0,
        adapter_bytes INTEGER NOT NULL DEFAULT 0,
        base_model_bytes INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        last_step INTEGER NOT NULL DEFAULT 0,
        total_steps INTEGER NOT NULL DEFAULT 0,
        output_dir TEXT NOT NULL DEFAULT '',
        UNIQUE (owner, request_id)
      );
      CREATE INDEX jobs_by_state ON jobs (state, seq);
      CREATE INDEX jobs_by_owner ON jobs (owner, seq);
      CREATE TABLE job_events (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        sequence INTEGER NOT NULL,
        time_us INTEGER NOT NULL,
        type TEXT NOT NULL,
        state TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        metrics_json TEXT NOT NULL DEFAULT '{}',
        step INTEGER NOT NULL DEFAULT 0,
        path TEXT NOT NULL DEFAULT '',
        bytes INTEGER NOT NULL DEFAULT 0,
        sha256 TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (job_id, sequence)
      ) WITHOUT ROWID;
      CREATE TABLE checkpoints (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        dir TEXT NOT NULL,
        bytes INTEGER NOT NULL DEFAULT 0,
        sha256 TEXT NOT NULL DEFAULT '',
        created_us INTEGER NOT NULL DEFAULT 0,
        eval_metric REAL,
        PRIMARY KEY (job_id, step)
      ) WITHOUT ROWID;
      )sql",
      // 2: how many of a job's attempts crashed, for JobSpec::max_retries across restarts.
      R"sql(
      ALTER TABLE jobs ADD COLUMN crashed_attempts INTEGER NOT NULL DEFAULT 0;
      )sql",
      // 3: the jobs a job trained beside over one base (attuned --share-base).
      R"sql(
      ALTER TABLE jobs ADD COLUMN shared_base_json TEXT NOT NULL DEFAULT '[]';
      )sql",
  };
  return *kMigrations;
}

}  // namespace

int LatestMigration() { return static_cast<int>(Migrations().size()); }

absl::StatusOr<int> CurrentSchemaVersion(sqlite3* db) {
  RETURN_IF_ERROR(Exec(db,
                       "CREATE TABLE IF NOT EXISTS schema_version ("
                       "version INTEGER PRIMARY KEY, applied_us INTEGER NOT NULL)"));
  ASSIGN_OR_RETURN(Statement select,
                   Statement::Prepare(db, "SELECT COALESCE(MAX(version), 0) FROM schema_version"));
  ASSIGN_OR_RETURN(bool row, select.Step());
  return row ? static_cast<int>(select.Int(0)) : 0;
}

absl::Status Migrate(sqlite3* db) {
  ASSIGN_OR_RETURN(int current, CurrentSchemaVersion(db));
  if (current > LatestMigration()) {
    return absl::FailedPreconditionError(
        absl::StrCat("database schema version ", current, " is newer than this attune supports (",
                     LatestMigration(), "); use a newer attuned or another --data-dir"));
  }
  for (int version = current + 1; version <= LatestMigration(); ++version) {
    ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(db));
    // Re-read inside the write lock: another process may have migrated meanwhile.
    ASSIGN_OR_RETURN(int now, CurrentSchemaVersion(db));
    if (now >= version) continue;
    absl::Status applied = Exec(db, Migrations()[version - 1]);
    if (!applied.ok()) {
      return absl::InternalError(
          absl::StrCat("schema migration ", version, " failed: ", applied.message()));
    }
    ASSIGN_OR_RETURN(Statement insert,
                     Statement::Prepare(db, "INSERT INTO schema_version VALUES (?, ?)"));
    RETURN_IF_ERROR(insert.Bind(1, int64_t{version})
                        .Bind(2, static_cast<int64_t>(absl::ToUnixMicros(absl::Now())))
                        .Run());
    RETURN_IF_ERROR(transaction.Commit());
  }
  return absl::OkStatus();
}

}  // namespace attune::store
