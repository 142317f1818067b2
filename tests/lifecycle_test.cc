// A job's end of life through the real attuned and the attune CLI: `attune checkpoints` lists
// the example job's checkpoints with the digests `attune download` verifies, `attune get` shows
// the bytes its directory holds, and `attune delete` removes the directory and every row of a
// finished job (then it is NOT_FOUND everywhere) but refuses a queued or running one. Every wait
// is bounded.
#include <sqlite3.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/attune_client.h"
#include "common/sha256.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

// The bytes of the regular files under `dir`, counted independently of the server's TreeBytes.
int64_t FilesBytes(const fs::path& dir) {
  int64_t bytes = 0;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) bytes += static_cast<int64_t>(entry.file_size());
  }
  return bytes;
}

// SHA-256 of the top-level files of a downloaded adapter, in name order (the archive's order).
std::string DownloadedSha256(const fs::path& dir) {
  std::vector<std::string> paths;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  return Sha256Files(paths).value();
}

// Rows of `table` that belong to job `id`, read from the server's database by a second
// connection.
int64_t RowsOf(const std::string& db_path, const std::string& table, const std::string& id) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  const std::string column = table == "jobs" ? "id" : "job_id";
  const std::string sql = "SELECT COUNT(*) FROM " + table + " WHERE " + column + " = ?";
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK);
  sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  const int64_t rows = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return rows;
}

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    example_ = dir_.path() + "/example";
    data_ = dir_.path() + "/data";
    fs::create_directories(example_);
    ASSERT_TRUE(MakeExample(example_));
    server_ =
        std::make_unique<AttunedProcess>(data_, std::vector<std::string>{"--data-roots", example_});
    ASSERT_FALSE(server_->address().empty());
  }

  CliResult Cli(const std::vector<std::string>& args) {
    return RunCli(server_->address(), args, 60);
  }

  std::string Submit(const std::vector<std::string>& extra) {
    CliResult r = Cli(ExampleSubmitArgs(example_, extra));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }

  // `attune --output json checkpoints ID`, parsed.
  v1::ListCheckpointsResponse Checkpoints(const std::string& id) {
    CliResult r = Cli({"--output", "json", "checkpoints", id});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    v1::ListCheckpointsResponse response;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &response).ok()) << r.out;
    return response;
  }

  // One listed checkpoint: its step's metrics are there, and its digest and size are what a
  // download of that step verifies and writes.
  void ExpectMatchesDownload(const std::string& id, const v1::CheckpointInfo& c) {
    EXPECT_TRUE(c.has_train_loss()) << c.step();
    EXPECT_GT(c.train_loss(), 0);
    ASSERT_TRUE(c.has_eval()) << c.step();
    EXPECT_EQ(c.eval().step(), c.step());
    ASSERT_TRUE(c.has_eval_metric_value());
    EXPECT_DOUBLE_EQ(c.eval_metric_value(), c.eval().accuracy());
    const std::string out = dir_.path() + "/adapter-" + std::to_string(c.step());
    CliResult download = Cli({"--output", "json", "download", id, "--checkpoint",
                              absl::StrCat("step:", c.step()), "-o", out});
    ASSERT_EQ(download.exit_code, 0) << download.err;
    nlohmann::json result = nlohmann::json::parse(download.out);
    EXPECT_EQ(result["sha256"], c.sha256()) << c.step();
    EXPECT_EQ(result["bytes"], std::to_string(c.bytes())) << c.step();
    EXPECT_EQ(DownloadedSha256(out), c.sha256());
    EXPECT_EQ(Sha256File(out + "/adapter_model.safetensors").value(), c.adapter_model_sha256());
  }

  // Exactly one checkpoint is best: the highest accuracy, the earliest step among equals, and
  // the one `download --checkpoint best` fetches. Returns it (nullptr and a failure if none).
  const v1::CheckpointInfo* ExpectOneBest(const std::string& id,
                                          const v1::ListCheckpointsResponse& listed) {
    const v1::CheckpointInfo* best = nullptr;
    for (const v1::CheckpointInfo& c : listed.checkpoints()) {
      if (!c.best()) continue;
      EXPECT_EQ(best, nullptr) << "two best checkpoints";
      best = &c;
    }
    if (best == nullptr) {
      ADD_FAILURE() << "no best checkpoint";
      return nullptr;
    }
    for (const v1::CheckpointInfo& c : listed.checkpoints()) {
      EXPECT_TRUE(c.eval_metric_value() < best->eval_metric_value() ||
                  (c.eval_metric_value() == best->eval_metric_value() && c.step() >= best->step()))
          << c.step() << " outranks the best, step " << best->step();
    }
    CliResult download = Cli({"--output", "json", "download", id, "--checkpoint", "best", "-o",
                              dir_.path() + "/adapter-best"});
    EXPECT_EQ(download.exit_code, 0) << download.err;
    if (download.exit_code == 0) {
      EXPECT_EQ(nlohmann::json::parse(download.out)["sha256"], best->sha256());
    }
    return best;
  }

  // `attune delete` of the finished job `id`, whose directory holds `on_disk` bytes: the
  // directory and every row go, and the job is NOT_FOUND everywhere (exit 3).
  void ExpectDeleted(const std::string& id, int64_t on_disk) {
    const std::string db = data_ + "/attune.db";
    EXPECT_GT(RowsOf(db, "job_events", id), 0);
    CliResult deleted = Cli({"--output", "json", "delete", id});
    ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
    v1::DeleteJobResponse response;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(deleted.out, &response).ok());
    EXPECT_EQ(response.job_id(), id);
    EXPECT_EQ(response.freed_bytes(), on_disk);
    EXPECT_FALSE(fs::exists(fs::path(data_) / "jobs" / id));
    for (const std::string table : {"jobs", "job_events", "checkpoints"}) {
      EXPECT_EQ(RowsOf(db, table, id), 0) << table;
    }
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"get", id}, {"checkpoints", id}, {"delete", id}, {"watch", id}}) {
      CliResult r = RunCli(server_->address(), args, 20);
      EXPECT_EQ(r.exit_code, 3) << args[0] << ": " << r.err;
      EXPECT_NE(r.err.find("NOT_FOUND: job '" + id + "' not found"), std::string::npos) << r.err;
    }
  }

  TempDir dir_;
  std::string example_;
  std::string data_;
  std::unique_ptr<AttunedProcess> server_;
};

TEST_F(LifecycleTest, CheckpointsMatchDownloadsAndDeleteRemovesAFinishedJob) {
  client::AttuneClient client(server_->address());
  const std::string id = Submit({"--max-steps", "12", "--checkpoint-every", "4", "--eval-every",
                                 "4", "--keep-checkpoints", "5", "--batch-size", "8"});
  ASSERT_EQ(WaitForJob(client, id, IsTerminal, 120).state(), v1::SUCCEEDED);

  const v1::ListCheckpointsResponse listed = Checkpoints(id);
  EXPECT_EQ(listed.job_id(), id);
  EXPECT_EQ(listed.eval_metric(), v1::EVAL_METRIC_ACCURACY);  // classification's default
  ASSERT_EQ(listed.checkpoints_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(listed.checkpoints(i).step(), 4 * (i + 1));
    ExpectMatchesDownload(id, listed.checkpoints(i));
  }
  const v1::CheckpointInfo* best = ExpectOneBest(id, listed);
  ASSERT_NE(best, nullptr);

  // The table for people: a header naming the metric, one row per step, the best starred.
  CliResult table = Cli({"checkpoints", id});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("STEP", 0), 0u) << table.out;
  EXPECT_NE(table.out.find("ACCURACY"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(best->sha256().substr(0, 12)), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(" * "), std::string::npos) << table.out;

  // The job's directory, measured by the server and here.
  const int64_t on_disk = FilesBytes(fs::path(data_) / "jobs" / id);
  EXPECT_GT(on_disk, 0);
  EXPECT_EQ(client.GetJob(id)->artifact_bytes(), on_disk);
  EXPECT_NE(Cli({"get", id}).out.find("on disk"), std::string::npos);

  ExpectDeleted(id, on_disk);
}

TEST_F(LifecycleTest, DeleteRefusesAQueuedOrRunningJobUntilItIsCancelled) {
  client::AttuneClient client(server_->address());
  const std::string running = Submit({"--max-steps", "100000", "--checkpoint-every", "2"});
  // Running, with a checkpoint on disk that a refused delete must leave alone.
  const v1::Job started = WaitForJob(
      client, running, [](const v1::Job& j) { return j.adapter_bytes() > 0; }, 60);
  ASSERT_EQ(started.state(), v1::RUNNING);
  const std::string queued = Submit({"--max-steps", "100000"});  // one CPU slot: it waits
  ASSERT_EQ(client.GetJob(queued)->state(), v1::QUEUED);

  const std::map<std::string, std::string> states = {{running, "RUNNING"}, {queued, "QUEUED"}};
  for (const auto& [id, state] : states) {
    CliResult r = Cli({"delete", id});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("FAILED_PRECONDITION: job " + id + " is " + state + "; cancel it first"),
              std::string::npos)
        << r.err;
  }
  EXPECT_EQ(client.GetJob(running)->state(), v1::RUNNING);
  EXPECT_TRUE(fs::exists(fs::path(data_) / "jobs" / running));

  for (const auto& [id, state] : states) {
    ASSERT_EQ(Cli({"cancel", id}).exit_code, 0);
    ASSERT_EQ(WaitForJob(client, id, IsTerminal, 60).state(), v1::CANCELLED);
    CliResult r = Cli({"delete", id});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("deleted " + id + " (freed ", 0), 0u) << r.out;
    EXPECT_FALSE(fs::exists(fs::path(data_) / "jobs" / id));
    EXPECT_EQ(client.GetJob(id).status().code(), absl::StatusCode::kNotFound);
  }
}

}  // namespace
}  // namespace attune::testing
