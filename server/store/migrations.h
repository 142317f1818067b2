// The store's schema, as an ordered list of migrations.
//
// Migration N takes the schema from version N-1 to N. `Migrate` applies, in order, every
// migration newer than the version recorded in `schema_version`, each in its own transaction
// together with its row in `schema_version`, so a crash mid-way leaves a consistent version.
// Never edit a released migration; append a new one.
#ifndef ATTUNE_SERVER_STORE_MIGRATIONS_H_
#define ATTUNE_SERVER_STORE_MIGRATIONS_H_

#include <sqlite3.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace attune::store {

// The newest schema version this binary knows.
int LatestMigration();

// The version recorded in the database; 0 for a fresh one. Creates `schema_version` if missing.
absl::StatusOr<int> CurrentSchemaVersion(sqlite3* db);

// Brings the schema to LatestMigration(). FAILED_PRECONDITION when the database is newer than
// this binary; INTERNAL on SQLite errors. Not thread-safe: call before sharing the connection.
absl::Status Migrate(sqlite3* db);

}  // namespace attune::store

#endif  // ATTUNE_SERVER_STORE_MIGRATIONS_H_
