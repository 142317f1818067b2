// The real attuned on data dirs with faults in the store: a job row whose stored spec cannot be
// read (what a +Inf field once left behind), a damaged or empty attune.db, and a full disk (a
// small tmpfs as the data dir, where the test may mount one). The server starts or refuses to
// with a message naming the file, keeps serving every other job, and recovers when space
// returns. Driven by the real attune CLI, the client library and GET /api/jobs.
#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"
#include "tests/metrics_running_job.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kBadId[] = "j-00000000000000bd";

// Runs `sql` on the database at `db_path` (no server running on it).
void RawExec(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

class StoreFaultsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    example_ = dir_.path() + "/example";
    fs::create_directories(example_);
    ASSERT_TRUE(MakeExample(example_));
  }

  std::vector<std::string> SubmitArgs() const {
    return {"submit", "--model",        example_ + "/model", "--train", example_ + "/train.jsonl",
            "--task", "classification", "--max-steps",       "1"};
  }

  // Submits a one-step job and waits (60 s at most) for it to succeed; returns its id.
  std::string RunOneJob(const AttunedProcess& server) {
    CliResult r = RunCli(server.address(), SubmitArgs(), 30);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string id = r.out.substr(0, r.out.find('\n'));
    client::AttuneClient client(server.address());
    EXPECT_EQ(WaitForJob(client, id, IsTerminal, 60).state(), v1::SUCCEEDED) << server.Log();
    return id;
  }

  // attuned on `data_dir` that is expected not to start: its exit code (-1 after 30 s).
  int StartRefused(const std::string& data_dir, std::string* output) {
    return RunProgram({ATTUNED_PATH, "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--devices",
                       "cpu", "--data-roots", example_},
                      "", output, 30);
  }

  TempDir dir_;
  std::string example_;
};

TEST_F(StoreFaultsE2eTest, AnUnreadableRowFailsAtStartAndEverythingElseKeepsWorking) {
  const std::string data = dir_.path() + "/data";
  std::string good;
  {
    AttunedProcess server(data, {"--data-roots", example_});
    ASSERT_FALSE(server.address().empty());
    good = RunOneJob(server);
    ASSERT_EQ(server.StopWith(SIGTERM, 30), 0);
  }
  // A queued copy of the good job whose spec has JSON null for lora.alpha.
  RawExec(
      data + "/attune.db",
      absl::StrCat("INSERT INTO jobs (id, owner, spec_json, priority, gpus, state, created_us) "
                   "SELECT '",
                   kBadId,
                   "', owner, replace(spec_json, '\"lora_alpha\":16.0', '\"lora_alpha\":null'), "
                   "priority, gpus, 'QUEUED', created_us + 1 FROM jobs WHERE id = '",
                   good, "'"));

  AttunedProcess server(data, {"--data-roots", example_, "--http", "127.0.0.1:0"});
  ASSERT_FALSE(server.address().empty()) << server.Log();
  const std::string reason =
      "the job's stored record cannot be read: stored spec is unreadable: job spec: "
      "[json.exception.type_error.302] type must be number, but is null";
  EXPECT_NE(server.Log().find(absl::StrCat("job ", kBadId, ": ", reason)), std::string::npos)
      << server.Log();

  CliResult list = RunCli(server.address(), {"list"}, 30);
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find(good), std::string::npos) << list.out;
  EXPECT_NE(list.out.find(kBadId), std::string::npos) << list.out;

  client::AttuneClient client(server.address());
  absl::StatusOr<v1::Job> bad = client.GetJob(kBadId);
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->state(), v1::FAILED);
  EXPECT_EQ(bad->error(), reason);
  CliResult get = RunCli(server.address(), {"get", kBadId}, 30);
  EXPECT_EQ(get.exit_code, 0) << get.err;
  EXPECT_NE(get.out.find("FAILED"), std::string::npos) << get.out;
  EXPECT_EQ(client.CancelJob(kBadId).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client.GetJob(good)->state(), v1::SUCCEEDED);

  int status = 0;
  const std::string jobs = HttpGet(server.http_address(), "/api/jobs", &status);
  EXPECT_EQ(status, 200) << jobs;
  EXPECT_NE(jobs.find(kBadId), std::string::npos) << jobs;
  EXPECT_NE(jobs.find(good), std::string::npos) << jobs;

  // New work still runs, and the server restarts on this data dir again.
  RunOneJob(server);
  ASSERT_EQ(server.StopWith(SIGTERM, 30), 0);
  AttunedProcess again(data, {"--data-roots", example_});
  ASSERT_FALSE(again.address().empty()) << again.Log();
  EXPECT_EQ(client::AttuneClient(again.address()).GetJob(kBadId)->error(), reason);
}

// Overwrites `length` bytes at the middle of the file with 0xff.
void DamageMiddle(const std::string& path, size_t length) {
  const size_t size = fs::file_size(path);
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>(size / 2));
  file << std::string(length, '\xff');
}

TEST_F(StoreFaultsE2eTest, ADamagedOrEmptyDatabaseIsRefusedAtStartNamingTheFile) {
  const std::string data = dir_.path() + "/data";
  {
    AttunedProcess server(data, {"--data-roots", example_});
    ASSERT_FALSE(server.address().empty());
    RunOneJob(server);
    ASSERT_EQ(server.StopWith(SIGTERM, 30), 0);
  }
  const std::string db = fs::canonical(data).string() + "/attune.db";
  // Enough history that the middle of the file is table pages.
  RawExec(db,
          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
          "INSERT INTO jobs (id, spec_json, state) SELECT 'j-pad' || i, '{}', 'SUCCEEDED' FROM n");
  ASSERT_FALSE(fs::exists(db + "-wal"));
  DamageMiddle(db, 3 * 4096);

  std::string output;
  EXPECT_EQ(StartRefused(data, &output), 1) << output;
  const std::string advice =
      "); attuned will not start on it: restore it from a backup, or move it (with its -wal and "
      "-shm files) aside to start with an empty job history\n";
  EXPECT_EQ(output.substr(0, db.size() + 33), "attuned: database '" + db + "' is damaged (")
      << output;
  ASSERT_GT(output.size(), advice.size());
  EXPECT_EQ(output.substr(output.size() - advice.size()), advice) << output;

  std::ofstream(db, std::ios::trunc).close();
  fs::remove(db + "-wal");
  output.clear();
  EXPECT_EQ(StartRefused(data, &output), 1) << output;
  EXPECT_EQ(output, "attuned: database '" + db +
                        "' is empty (0 bytes) and would be treated as a fresh job history; "
                        "attuned will not start on it: remove the file to start afresh, or "
                        "restore it from a backup\n");
  EXPECT_EQ(fs::file_size(db), 0u);
}

// A tmpfs of `size` mounted at a fresh directory, unmounted by the destructor.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& dir, const std::string& size) : dir_(dir) {
    fs::create_directories(dir);
    std::string output;
    mounted_ = RunProgram({"/bin/mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", dir}, "",
                          &output, 10) == 0;
  }
  ~TmpfsMount() {
    std::string output;
    if (mounted_) RunProgram({"/bin/umount", "-l", dir_}, "", &output, 10);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// Writes to `path` until the file system is full.
void FillUp(const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  const std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 100000 && out.write(chunk.data(), chunk.size()) && out.flush(); ++i) {
  }
}

TEST_F(StoreFaultsE2eTest, AFullDataDirIsResourceExhaustedAtCreateJobAndRecovers) {
  const std::string data = dir_.path() + "/data";
  TmpfsMount mount(data, "8m");
  if (!mount.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  AttunedProcess server(data, {"--data-roots", example_});
  ASSERT_FALSE(server.address().empty()) << server.Log();
  const std::string first = RunOneJob(server);

  FillUp(data + "/filler");
  CliResult full = RunCli(server.address(), SubmitArgs(), 30);
  EXPECT_EQ(full.exit_code, 1);
  const std::string prefix = "attune: RESOURCE_EXHAUSTED: ";
  const std::string tail = "; the data directory '" + fs::canonical(data).string() +
                           "' is full: free space there, then retry\n";
  EXPECT_EQ(full.err.substr(0, prefix.size()), prefix) << full.err;
  ASSERT_GT(full.err.size(), tail.size()) << full.err;
  EXPECT_EQ(full.err.substr(full.err.size() - tail.size()), tail) << full.err;
  EXPECT_EQ(full.out, "");
  // Reads keep working while the disk is full.
  CliResult list = RunCli(server.address(), {"list"}, 30);
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find(first), std::string::npos) << list.out;

  fs::remove(data + "/filler");
  RunOneJob(server);
  ASSERT_EQ(server.StopWith(SIGTERM, 30), 0) << server.Log();
}

// A running job whose end cannot be recorded: cancelling it is never INTERNAL ("not known to the
// scheduler"), and once there is room again its end is recorded and the server works on.
TEST_F(StoreFaultsE2eTest, AJobEndingOnAFullDiskIsRecordedWhenSpaceReturns) {
  const std::string data = dir_.path() + "/data";
  TmpfsMount mount(data, "8m");
  if (!mount.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  AttunedProcess server(data, {"--data-roots", example_});
  ASSERT_FALSE(server.address().empty()) << server.Log();
  std::vector<std::string> args = SubmitArgs();
  args.back() = "100000";  // --max-steps: runs until cancelled
  CliResult submit = RunCli(server.address(), args, 30);
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  const std::string id = submit.out.substr(0, submit.out.find('\n'));
  client::AttuneClient client(server.address());
  WaitForJob(
      client, id, [](const v1::Job& job) { return job.current_step() >= 2; }, 60);

  FillUp(data + "/filler");
  ASSERT_TRUE(client.CancelJob(id).ok());
  // Until the job has stopped the cancel is accepted again; after, it has ended but the store
  // could not record it: FAILED_PRECONDITION, never INTERNAL.
  absl::Status cancel;
  for (int i = 0; i < 300; ++i) {
    cancel = client.CancelJob(id).status();
    if (!cancel.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(cancel.code(), absl::StatusCode::kFailedPrecondition) << cancel;
  EXPECT_EQ(client.GetJob(id)->state(), v1::RUNNING);  // what the store still says

  fs::remove(data + "/filler");
  // Stopping writes a last checkpoint, which the full disk refused: the job failed with that.
  v1::Job ended = WaitForJob(client, id, IsTerminal, 30);
  EXPECT_EQ(ended.state(), v1::FAILED) << server.Log();
  const std::string refused = "safetensors: cannot write '" + fs::canonical(data).string() +
                              "/jobs/" + id + "/checkpoints/";
  EXPECT_EQ(ended.error().substr(0, refused.size()), refused) << ended.error();
  // The engine says why, in the OS's words.
  EXPECT_NE(ended.error().find("No space left on device"), std::string::npos) << ended.error();
  EXPECT_EQ(client.CancelJob(id).status().code(), absl::StatusCode::kFailedPrecondition);
  RunOneJob(server);
  ASSERT_EQ(server.StopWith(SIGTERM, 30), 0) << server.Log();
}

}  // namespace
}  // namespace attune::testing
