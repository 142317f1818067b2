// Schema migrations: a fresh database gets every one, a reopen applies none, a version-1
// database is brought up keeping its jobs, and a newer one is refused.
#include <sqlite3.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/store/store.h"
#include "server/store/store_test_fixture.h"

namespace attune::store {
namespace {

TEST_F(StoreTest, MigrationsApplyOnFreshDatabaseAndAreIdempotentOnReopen) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(*store->SchemaVersion(), Store::LatestSchemaVersion());
    ASSERT_TRUE(store->InsertJob(MakeJob("r1", 1)).ok());
  }
  auto store = OpenStore();  // reopening applies nothing and keeps the data
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), Store::LatestSchemaVersion());
  EXPECT_EQ(store->ListJobs({}).value().jobs.size(), 1u);

  // One row per migration, and WAL mode is on.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM schema_version", -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), Store::LatestSchemaVersion());
  sqlite3_finalize(stmt);
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(StoreTest, MigratesAVersionOneDatabaseKeepingItsJobs) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->InsertJob(MakeJob("r1", 1)).ok());
  }
  // Back to what version 1 wrote: no crashed_attempts or shared_base_json column, one
  // schema_version row.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "ALTER TABLE jobs DROP COLUMN crashed_attempts; "
                         "ALTER TABLE jobs DROP COLUMN shared_base_json; "
                         "DELETE FROM schema_version WHERE version > 1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), Store::LatestSchemaVersion());
  std::vector<Job> jobs = store->ListJobs({}).value().jobs;
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].crashed_attempts, 0);
  EXPECT_TRUE(jobs[0].shared_base_with.empty());
  EXPECT_EQ(jobs[0].request_id, "r1");
}

TEST_F(StoreTest, RefusesDatabaseFromNewerVersion) {
  { ASSERT_NE(OpenStore(), nullptr); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "INSERT INTO schema_version VALUES (999, 0)", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace attune::store
