// Jobs in worker processes (server/worker/supervisor.h), end to end on the CPU: a job trains in
// an attune-worker that attuned started, not in attuned; kill -9 of that worker fails only its
// attempt, which is retried from the last checkpoint and ends with the very adapter an
// uninterrupted run writes; with no retries left the job fails naming the signal and the
// worker's last log lines; and kill -9 of attuned takes its workers with it.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

bool Alive(pid_t pid) { return fs::exists("/proc/" + std::to_string(pid)); }

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    example_ = dir_.path() + "/example";
    fs::create_directories(example_);
    ASSERT_TRUE(MakeExample(example_));
  }

  // resume_test's job: long enough to be killed in the middle, dropout so that resuming must
  // restore the random generator too.
  std::string Submit(const AttunedProcess& server, const std::vector<std::string>& extra = {}) {
    CliResult r = RunCli(server.address(), LongJobSubmitArgs(example_, extra));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }

  std::string DownloadAdapter(const AttunedProcess& server, const std::string& id,
                              const std::string& dir) {
    CliResult r = RunCli(server.address(), {"download", id, "-o", dir});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ReadFile(dir + "/adapter_model.safetensors");
  }

  // The job's event messages (state changes, warnings, errors), in order.
  static std::vector<std::string> Messages(const AttunedProcess& server, const std::string& id) {
    std::vector<std::string> messages;
    EXPECT_TRUE(WatchJobFor(server.address(), id, 0, 120, [&](const v1::JobEvent& e) {
                  if (e.has_state_change()) messages.push_back(e.state_change().message());
                  if (e.has_warning()) messages.push_back(e.warning().message());
                  if (e.has_error()) messages.push_back(e.error().message());
                  return true;
                }).ok());
    return messages;
  }

  static bool AnyContains(const std::vector<std::string>& messages, const std::string& text) {
    for (const std::string& m : messages) {
      if (m.find(text) != std::string::npos) return true;
    }
    return false;
  }

  TempDir dir_;
  std::string example_;
};

TEST_F(WorkerTest, KillNineOfTheWorkerRetriesFromTheCheckpointWithTheUninterruptedAdapter) {
  std::string straight;
  {
    AttunedProcess server(dir_.path() + "/straight", {"--data-roots", example_});
    client::AttuneClient client(server.address());
    const std::string id = Submit(server);
    ASSERT_EQ(WaitForJob(client, id, IsTerminal, 120).state(), v1::SUCCEEDED);
    straight = DownloadAdapter(server, id, dir_.path() + "/straight-adapter");
  }
  ASSERT_FALSE(straight.empty());
  AttunedProcess server(dir_.path() + "/killed",
                        {"--data-roots", example_, "--retry-backoff", "0"});
  client::AttuneClient client(server.address());
  const std::string id = Submit(server);
  const int64_t at_kill =
      WaitForJob(
          client, id, [](const v1::Job& j) { return j.current_step() >= 100; }, 120)
          .current_step();
  const pid_t worker = OneWorkerOf(server.pid(), 10);
  ASSERT_GT(worker, 0) << "the running job has no attune-worker process under attuned";
  ASSERT_EQ(kill(worker, SIGKILL), 0);
  v1::Job job = WaitForJob(client, id, IsTerminal, 120);
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.error();
  ASSERT_LT(at_kill, 300) << "the job finished before its worker could be killed";
  EXPECT_TRUE(Alive(server.pid())) << "attuned died with its worker";
  const std::vector<std::string> messages = Messages(server, id);
  EXPECT_TRUE(AnyContains(messages, "attempt 1 crashed at step "));
  EXPECT_TRUE(AnyContains(messages, "(pid " + std::to_string(worker) + ") was killed by signal 9"));
  EXPECT_TRUE(AnyContains(messages, "queued again after a crash (retry 1 of 2"));
  EXPECT_TRUE(AnyContains(messages, "resumed from the checkpoint at step "));
  EXPECT_TRUE(DownloadAdapter(server, id, dir_.path() + "/killed-adapter") == straight)
      << "the retried job's adapter differs from the uninterrupted run's";
}

TEST_F(WorkerTest, WithNoRetriesLeftTheJobFailsNamingTheSignalAndTheWorkersLog) {
  AttunedProcess server(dir_.path() + "/data", {"--data-roots", example_});
  client::AttuneClient client(server.address());
  const std::string id = Submit(server, {"--max-retries", "0"});
  WaitForJob(
      client, id, [](const v1::Job& j) { return j.current_step() >= 5; }, 120);
  const pid_t worker = OneWorkerOf(server.pid(), 10);
  ASSERT_GT(worker, 0);
  ASSERT_EQ(kill(worker, SIGKILL), 0);
  v1::Job job = WaitForJob(client, id, IsTerminal, 60);
  ASSERT_EQ(job.state(), v1::FAILED);
  EXPECT_NE(job.error().find("was killed by signal 9 (Killed) before it reported the job's end"),
            std::string::npos)
      << job.error();
  EXPECT_NE(job.error().find("worker.log:\nattune-worker: job " + id), std::string::npos)
      << job.error();
  // The server goes on: the next job runs.
  const std::string next = Submit(server, {"--max-steps", "3"});
  EXPECT_EQ(WaitForJob(client, next, IsTerminal, 120).state(), v1::SUCCEEDED);
}

// Cancel reaches the worker (Stop) and it ends the job after its current step: the job is
// CANCELLED well before its 300 steps, and the worker has exited.
TEST_F(WorkerTest, CancelStopsTheWorker) {
  AttunedProcess server(dir_.path() + "/data", {"--data-roots", example_});
  client::AttuneClient client(server.address());
  const std::string id = Submit(server);
  const int64_t at_cancel =
      WaitForJob(
          client, id, [](const v1::Job& j) { return j.current_step() >= 5; }, 120)
          .current_step();
  const pid_t worker = OneWorkerOf(server.pid(), 10);
  ASSERT_GT(worker, 0);
  ASSERT_EQ(RunCli(server.address(), {"cancel", id}).exit_code, 0);
  v1::Job job = WaitForJob(client, id, IsTerminal, 30);
  EXPECT_EQ(job.state(), v1::CANCELLED) << job.error();
  EXPECT_LT(job.current_step(), 300);
  EXPECT_GE(job.current_step(), at_cancel);
  EXPECT_FALSE(Alive(worker)) << "the cancelled job's worker is still running";
  EXPECT_TRUE(WorkersOf(server.pid()).empty());
}

TEST_F(WorkerTest, KillNineOfAttunedTakesItsWorkersWithIt) {
  AttunedProcess server(dir_.path() + "/data", {"--data-roots", example_});
  client::AttuneClient client(server.address());
  const std::string id = Submit(server);
  WaitForJob(
      client, id, [](const v1::Job& j) { return j.current_step() >= 5; }, 120);
  const pid_t worker = OneWorkerOf(server.pid(), 10);
  ASSERT_GT(worker, 0);
  ASSERT_EQ(server.StopWith(SIGKILL, 10), 128 + SIGKILL);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    // A zombie reparented to init is reaped there; a live worker keeps its /proc entry.
    gone = !Alive(worker);
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << "worker " << worker << " outlived attuned by 5 s";
}

}  // namespace
}  // namespace attune::testing
