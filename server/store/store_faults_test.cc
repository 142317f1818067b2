// The store against bad rows, damaged or empty database files and a full disk: one unreadable
// row never fails a whole read, a damaged or empty file is refused at Open with a message that
// names it, and a write that finds the disk full is RESOURCE_EXHAUSTED and leaves nothing behind.
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/store/store.h"

namespace attune::store {
namespace {

class StoreFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/store_faults_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/attune.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static Job MakeJob(int64_t created_us) {
    Job job;
    job.spec.train.model_dir = "/models/tiny";
    job.spec.train.task = Task::kSequenceClassification;
    job.spec.train.train_path = "/data/train.jsonl";
    job.spec.train.targets = {"q", "v"};
    job.created_us = created_us;
    return job;
  }

  // Runs `sql` on the database through a connection of its own (the store must be closed).
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error != nullptr ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  std::string dir_;
  std::string path_;
};

// What a +Inf spec field used to leave behind: JSON null where a number belongs.
constexpr char kNullAlpha[] =
    "UPDATE jobs SET spec_json = replace(spec_json, '\"lora_alpha\":16.0', "
    "'\"lora_alpha\":null') WHERE id = '%s'";

TEST_F(StoreFaultsTest, AnUnreadableRowIsReadAsFailedAndTheOthersStillList) {
  std::string good, bad, bad_state;
  {
    std::unique_ptr<Store> store = Store::Open(path_).value();
    good = store->InsertJob(MakeJob(1)).value().id;
    bad = store->InsertJob(MakeJob(2)).value().id;
    bad_state = store->InsertJob(MakeJob(3)).value().id;
  }
  char sql[400];
  snprintf(sql, sizeof(sql), kNullAlpha, bad.c_str());
  RawExec(sql);
  RawExec("UPDATE jobs SET state = 'HALF-DONE' WHERE id = '" + bad_state + "'");
  std::unique_ptr<Store> store = Store::Open(path_).value();

  absl::StatusOr<JobPage> page = store->ListJobs({});
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->jobs.size(), 3u);
  EXPECT_EQ(page->jobs[2].id, good);
  EXPECT_EQ(page->jobs[2].state, JobState::kQueued);
  EXPECT_EQ(page->jobs[2].unreadable, "");
  const Job& listed = page->jobs[1];
  EXPECT_EQ(listed.id, bad);
  EXPECT_EQ(listed.state, JobState::kFailed);
  EXPECT_EQ(listed.unreadable,
            "stored spec is unreadable: job spec: [json.exception.type_error.302] type must be "
            "number, but is null");
  EXPECT_EQ(listed.error, "the job's stored record cannot be read: " + listed.unreadable);
  EXPECT_EQ(page->jobs[0].unreadable,
            "stored state is unreadable: state: unknown job state 'HALF-DONE'; expected one of "
            "QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, PAUSED");

  absl::StatusOr<std::vector<Job>> queued = store->JobsInState(JobState::kQueued);
  ASSERT_TRUE(queued.ok()) << queued.status();
  ASSERT_EQ(queued->size(), 2u);
  EXPECT_EQ((*queued)[1].id, bad);
  EXPECT_EQ((*queued)[1].unreadable, listed.unreadable);

  // Once the failure is recorded, its reason is the job's error.
  ASSERT_TRUE(store->FailJobAndAppendEvents(bad, "recorded reason", 9, {}).ok());
  absl::StatusOr<Job> got = store->GetJob(bad);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->state, JobState::kFailed);
  EXPECT_EQ(got->error, "recorded reason");
  EXPECT_EQ(got->finished_us, 9);
  std::map<JobState, int64_t> counts = store->CountJobsByState().value();
  EXPECT_EQ(counts, (std::map<JobState, int64_t>{{JobState::kQueued, 1}, {JobState::kFailed, 2}}));
}

TEST_F(StoreFaultsTest, AnEmptyDatabaseFileIsRefusedNotTakenAsAFreshHistory) {
  std::ofstream(path_).close();
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.status().message(),
            "database '" + path_ +
                "' is empty (0 bytes) and would be treated as a fresh job history; attuned will "
                "not start on it: remove the file to start afresh, or restore it from a backup");
  EXPECT_EQ(std::filesystem::file_size(path_), 0u);  // left as it was
  std::filesystem::remove(path_);
  EXPECT_TRUE(Store::Open(path_).ok());  // a missing file is a fresh history
}

// Overwrites `length` bytes at the middle of the file with 0xff.
void DamageMiddle(const std::string& path, size_t length) {
  const size_t size = std::filesystem::file_size(path);
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>(size / 2));
  file << std::string(length, '\xff');
}

TEST_F(StoreFaultsTest, ADamagedDatabaseIsRefusedNamingTheFile) {
  {
    std::unique_ptr<Store> store = Store::Open(path_).value();
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(store->InsertJob(MakeJob(i)).ok());
  }
  ASSERT_FALSE(std::filesystem::exists(path_ + "-wal"));  // checkpointed on close
  ASSERT_GT(std::filesystem::file_size(path_), 20u * 4096);
  DamageMiddle(path_, 3 * 4096);
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  const std::string message(store.status().message());
  EXPECT_EQ(message.substr(0, path_.size() + 24), "database '" + path_ + "' is damaged (");
  const std::string advice =
      "); attuned will not start on it: restore it from a backup, or move it (with its -wal and "
      "-shm files) aside to start with an empty job history";
  ASSERT_GT(message.size(), advice.size());
  EXPECT_EQ(message.substr(message.size() - advice.size()), advice);
}

TEST_F(StoreFaultsTest, AFullDiskIsResourceExhaustedNamingTheDataDirAndWritesNothing) {
  const std::string first = Store::Open(path_).value()->InsertJob(MakeJob(0)).value().id;
  StoreOptions options;
  options.max_page_count = 1;  // raised by SQLite to the pages the database has now
  {
    std::unique_ptr<Store> store = Store::Open(path_, options).value();
    std::vector<JobEvent> events(1);
    absl::Status full;
    for (int i = 1; i < 1000 && full.ok(); ++i) {
      full = store->InsertJob(MakeJob(i), &events).status();
    }
    EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
    const std::string tail =
        "; the data directory '" + dir_ + "' is full: free space there, then retry";
    ASSERT_GT(full.message().size(), tail.size());
    EXPECT_EQ(full.message().substr(full.message().size() - tail.size()), tail);
    EXPECT_NE(full.message().find("database or disk is full"), std::string::npos) << full;
    // Reads still work, and the failed insert left no row and no event behind.
    ListJobsQuery all;
    all.page_size = 1000;
    absl::StatusOr<JobPage> page = store->ListJobs(all);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const Job& job : page->jobs) {
      if (job.id != first) EXPECT_EQ(store->LastEventSequence(job.id).value(), 1);
    }
  }
  // With room again (here: no limit) writes succeed.
  std::unique_ptr<Store> store = Store::Open(path_).value();
  EXPECT_TRUE(store->InsertJob(MakeJob(5000)).ok());
  EXPECT_TRUE(store->GetJob(first).ok());
}

}  // namespace
}  // namespace attune::store
