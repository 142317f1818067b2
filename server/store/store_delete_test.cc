// Store::DeleteJob (a finished job's rows go in one transaction, a live job's stay) and
// Store::CheckpointStepEvents (the events ListCheckpoints reads), on the real SQLite.
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/store/store.h"

namespace attune::store {
namespace {

class StoreDeleteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/store_delete_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/attune.db";
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A job in `state` with a step, an evaluation and a checkpoint at steps 1 and 2, and a step
  // at 3 without a checkpoint.
  std::string AddJob(JobState state) {
    Job job;
    job.spec.train.model_dir = "/models/tiny";
    job.spec.train.task = Task::kSequenceClassification;
    job.spec.train.train_path = "/data/train.jsonl";
    job.state = state;
    absl::StatusOr<Job> inserted = store_->InsertJob(job);
    EXPECT_TRUE(inserted.ok()) << inserted.status();
    const std::string id = inserted->id;
    for (int64_t step = 1; step <= 3; ++step) {
      JobEvent metrics = Event(id, EventType::kMetrics, step);
      metrics.step_metrics = StepMetrics{};
      metrics.step_metrics->train_loss = 1.0 / step;
      EXPECT_TRUE(store_->AppendEvent(metrics).ok());
      if (step == 3) break;
      JobEvent eval = Event(id, EventType::kEval, step);
      eval.eval = EvalMetrics{};
      eval.eval->loss = 0.5 / step;
      eval.eval->accuracy = 0.6 + 0.1 * step;
      EXPECT_TRUE(store_->AppendEvent(eval).ok());
      EXPECT_TRUE(store_->AppendEvent(Event(id, EventType::kCheckpoint, step)).ok());
      CheckpointRecord record;
      record.job_id = id;
      record.step = step;
      record.dir = "/artifacts/jobs/" + id + "/checkpoint-" + std::to_string(step);
      record.eval_metric = 0.6 + 0.1 * step;
      EXPECT_TRUE(store_->InsertCheckpoint(record).ok());
    }
    return id;
  }

  static JobEvent Event(const std::string& job_id, EventType type, int64_t step) {
    JobEvent event;
    event.job_id = job_id;
    event.type = type;
    event.state = JobState::kRunning;
    event.step = step;
    event.time_us = 1000 + step;
    return event;
  }

  // Rows of `table` whose `column` is `id`, counted by a second connection.
  int64_t CountRows(const std::string& table, const std::string& column, const std::string& id) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const std::string sql = "SELECT COUNT(*) FROM " + table + " WHERE " + column + " = ?";
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK);
    sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    const int64_t count = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return count;
  }

  void ExpectRows(const std::string& id, int64_t jobs, int64_t events, int64_t checkpoints) {
    EXPECT_EQ(CountRows("jobs", "id", id), jobs) << id;
    EXPECT_EQ(CountRows("job_events", "job_id", id), events) << id;
    EXPECT_EQ(CountRows("checkpoints", "job_id", id), checkpoints) << id;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreDeleteTest, DeletesAFinishedJobsRowEventsAndCheckpointsAndNothingElse) {
  const std::string doomed = AddJob(JobState::kSucceeded);
  const std::string kept = AddJob(JobState::kFailed);
  ExpectRows(doomed, 1, 7, 2);

  ASSERT_TRUE(store_->DeleteJob(doomed).ok());

  ExpectRows(doomed, 0, 0, 0);
  EXPECT_EQ(store_->GetJob(doomed).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->EventsAfter(doomed, 0, 0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListCheckpoints(doomed).value().empty());
  ExpectRows(kept, 1, 7, 2);
  EXPECT_EQ(store_->ListCheckpoints(kept).value().size(), 2u);
  // Deleting it again: it is unknown now.
  EXPECT_EQ(store_->DeleteJob(doomed).code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreDeleteTest, EveryTerminalStateMayBeDeleted) {
  for (JobState state : {JobState::kSucceeded, JobState::kFailed, JobState::kCancelled}) {
    const std::string id = AddJob(state);
    EXPECT_TRUE(store_->DeleteJob(id).ok()) << JobStateName(state);
    ExpectRows(id, 0, 0, 0);
  }
}

TEST_F(StoreDeleteTest, RefusesAQueuedOrRunningJobNamingItsState) {
  for (JobState state : {JobState::kQueued, JobState::kRunning}) {
    const std::string id = AddJob(state);
    absl::Status status = store_->DeleteJob(id);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(status.message(), "job " + id + " is " + JobStateName(state) + "; cancel it first");
    ExpectRows(id, 1, 7, 2);
  }
}

TEST_F(StoreDeleteTest, UnknownJobIsNotFound) {
  absl::Status status = store_->DeleteJob("j-0000000000000000");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "job 'j-0000000000000000' not found");
}

TEST_F(StoreDeleteTest, AFailureHalfWayDeletesNothing) {
  const std::string id = AddJob(JobState::kCancelled);
  // The job row's deletion fails after its events and checkpoints were deleted in the same
  // transaction: all of it must be rolled back.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TRIGGER refuse BEFORE DELETE ON jobs BEGIN SELECT RAISE(ABORT, "
                         "'refused by the test'); END",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  absl::Status status = store_->DeleteJob(id);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("refused by the test"), absl::string_view::npos) << status;
  ExpectRows(id, 1, 7, 2);
}

TEST_F(StoreDeleteTest, CheckpointStepEventsAreTheStepAndEvalEventsAtCheckpointSteps) {
  const std::string id = AddJob(JobState::kSucceeded);
  absl::StatusOr<std::vector<JobEvent>> events = store_->CheckpointStepEvents(id);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 4u);  // metrics and eval at steps 1 and 2; not step 3's metrics
  const std::vector<std::pair<EventType, int64_t>> expected = {{EventType::kMetrics, 1},
                                                               {EventType::kEval, 1},
                                                               {EventType::kMetrics, 2},
                                                               {EventType::kEval, 2}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*events)[i].type, expected[i].first) << i;
    EXPECT_EQ((*events)[i].step, expected[i].second) << i;
  }
  EXPECT_DOUBLE_EQ((*events)[2].step_metrics->train_loss, 0.5);
  EXPECT_DOUBLE_EQ(*(*events)[3].eval->accuracy, 0.8);
  EXPECT_EQ(store_->CheckpointStepEvents("j-0000000000000000").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace attune::store
