// Crash safety end to end: kill -9 of attuned in the middle of a job, then a restart, must end
// with the very adapter an uninterrupted run writes (on the CPU, bit for bit); and a client
// watching a job reconnects across a restart with no gap and no repeat in the event sequence.
#include <signal.h>

#include <filesystem>
#include <vector>

#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

class ResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    example_ = dir_.path() + "/example";
    fs::create_directories(example_);
    ASSERT_TRUE(MakeExample(example_));
  }

  // The example job, long enough to be killed in the middle, with dropout so that resuming
  // must restore the random generator too.
  std::string Submit(const AttunedProcess& server) {
    CliResult r = RunCli(server.address(), LongJobSubmitArgs(example_));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }

  // Downloads the job's latest adapter into `dir` and returns adapter_model.safetensors' bytes.
  std::string DownloadAdapter(const AttunedProcess& server, const std::string& id,
                              const std::string& dir) {
    CliResult r = RunCli(server.address(), {"download", id, "-o", dir});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ReadFile(dir + "/adapter_model.safetensors");
  }

  // The last state-change message of job `id` that starts with `prefix`; "" when none does.
  static std::string StateMessage(const AttunedProcess& server, const std::string& id,
                                  const std::string& prefix) {
    std::string found;
    EXPECT_TRUE(WatchJobFor(server.address(), id, 0, 120, [&](const v1::JobEvent& e) {
                  const std::string& m = e.state_change().message();
                  if (m.rfind(prefix, 0) == 0) found = m;
                  return true;
                }).ok());
    return found;
  }

  // The step of the checkpoint job `id` last resumed from; -1 when it never resumed.
  static int64_t ResumedFrom(const AttunedProcess& server, const std::string& id) {
    const std::string prefix = "resumed from the checkpoint at step ";
    const std::string m = StateMessage(server, id, prefix);
    return m.empty() ? -1 : std::stoll(m.substr(prefix.size()));
  }

  // The adapter of the job run without interruption, in a server of its own.
  std::string StraightAdapter() {
    AttunedProcess server(dir_.path() + "/straight", {"--data-roots", example_});
    client::AttuneClient client(server.address());
    const std::string id = Submit(server);
    v1::Job job = WaitForJob(client, id, IsTerminal, 120);
    EXPECT_EQ(job.state(), v1::SUCCEEDED) << job.error();
    return DownloadAdapter(server, id, dir_.path() + "/straight-adapter");
  }

  TempDir dir_;
  std::string example_;
};

TEST_F(ResumeTest, KillNineMidJobThenRestartGivesTheUninterruptedAdapter) {
  std::string straight_adapter;
  {
    AttunedProcess server(dir_.path() + "/straight", {"--data-roots", example_});
    client::AttuneClient client(server.address());
    const std::string id = Submit(server);
    v1::Job job = WaitForJob(client, id, IsTerminal, 120);
    ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.error();
    straight_adapter = DownloadAdapter(server, id, dir_.path() + "/straight-adapter");
  }
  ASSERT_FALSE(straight_adapter.empty());

  const std::string data = dir_.path() + "/killed";
  std::string id;
  int64_t step_at_kill = 0;
  {
    AttunedProcess server(data, {"--data-roots", example_});
    client::AttuneClient client(server.address());
    id = Submit(server);
    v1::Job job = WaitForJob(
        client, id, [](const v1::Job& j) { return j.current_step() >= 100; }, 120);
    step_at_kill = job.current_step();
    ASSERT_EQ(server.StopWith(SIGKILL, 10), 128 + SIGKILL);
  }
  ASSERT_LT(step_at_kill, 300) << "the job finished before it could be killed";
  AttunedProcess server(data, {"--data-roots", example_});
  client::AttuneClient client(server.address());
  v1::Job job = WaitForJob(client, id, IsTerminal, 120);
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.error();
  EXPECT_EQ(job.current_step(), 300);
  // It continued from a checkpoint rather than starting again: an event says from which.
  const int64_t resumed_from = ResumedFrom(server, id);
  EXPECT_GE(resumed_from, 80);
  EXPECT_LE(resumed_from, step_at_kill);
  EXPECT_EQ(resumed_from % 40, 0);
  const std::string resumed_adapter = DownloadAdapter(server, id, dir_.path() + "/resumed-adapter");
  EXPECT_EQ(resumed_adapter.size(), straight_adapter.size());
  EXPECT_TRUE(resumed_adapter == straight_adapter)
      << "the resumed job's adapter differs from the uninterrupted run's";
}

// A job of higher priority submitted while the same job runs on the one CPU slot preempts it:
// it checkpoints, re-queues, resumes from that checkpoint after the other job, and ends with
// the uninterrupted run's adapter.
TEST_F(ResumeTest, PreemptedJobResumesWithTheUninterruptedAdapter) {
  const std::string straight_adapter = StraightAdapter();
  ASSERT_FALSE(straight_adapter.empty());
  AttunedProcess server(dir_.path() + "/preempted", {"--data-roots", example_});
  client::AttuneClient client(server.address());
  const std::string id = Submit(server);
  WaitForJob(
      client, id, [](const v1::Job& j) { return j.current_step() >= 50; }, 120);
  CliResult urgent = RunCli(
      server.address(),
      ExampleSubmitArgs(example_, {"--priority", "5", "--max-steps", "3", "--packing", "off"}));
  ASSERT_EQ(urgent.exit_code, 0) << urgent.err;
  const std::string urgent_id = urgent.out.substr(0, urgent.out.find('\n'));
  ASSERT_EQ(WaitForJob(client, urgent_id, IsTerminal, 120).state(), v1::SUCCEEDED);
  v1::Job job = WaitForJob(client, id, IsTerminal, 120);
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.error();
  const std::string preempted = StateMessage(server, id, "preempted by job " + urgent_id);
  EXPECT_NE(preempted.find("(priority 5) at step "), std::string::npos) << preempted;
  EXPECT_TRUE(DownloadAdapter(server, id, dir_.path() + "/preempted-adapter") == straight_adapter)
      << "the preempted job's adapter differs from the uninterrupted run's";
}

// attune pause, then attune resume, in the middle of the same job: it stops at a checkpoint of
// its own (not a periodic one), frees its slot, and ends with the uninterrupted run's adapter.
TEST_F(ResumeTest, PauseThenResumeGivesTheUninterruptedAdapter) {
  const std::string straight_adapter = StraightAdapter();
  ASSERT_FALSE(straight_adapter.empty());
  AttunedProcess server(dir_.path() + "/paused", {"--data-roots", example_});
  client::AttuneClient client(server.address());
  const std::string id = Submit(server);
  WaitForJob(
      client, id, [](const v1::Job& j) { return j.current_step() >= 50; }, 120);
  CliResult pause = RunCli(server.address(), {"pause", id});
  ASSERT_EQ(pause.exit_code, 0) << pause.err;
  v1::Job paused = WaitForJob(
      client, id, [](const v1::Job& j) { return j.state() == v1::PAUSED; }, 60);
  ASSERT_EQ(paused.state(), v1::PAUSED) << paused.error();
  const int64_t paused_at = paused.current_step();
  ASSERT_LT(paused_at, 300) << "the job finished before it could be paused";
  CliResult again = RunCli(server.address(), {"resume", id, "--output", "json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out).value("state", ""), "QUEUED") << again.out;
  v1::Job job = WaitForJob(client, id, IsTerminal, 120);
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.error();
  const int64_t resumed_from = ResumedFrom(server, id);
  EXPECT_EQ(resumed_from, paused_at);  // the pause's own checkpoint
  EXPECT_TRUE(DownloadAdapter(server, id, dir_.path() + "/paused-adapter") == straight_adapter)
      << "the paused and resumed job's adapter differs from the uninterrupted run's";
  // Resuming a job that is not paused is refused with FAILED_PRECONDITION's exit code.
  CliResult late = RunCli(server.address(), {"resume", id});
  EXPECT_NE(late.exit_code, 0);
  EXPECT_NE(late.err.find("only PAUSED jobs can be resumed"), std::string::npos) << late.err;
}

TEST_F(ResumeTest, WatchReconnectsAcrossARestartWithNoGapAndNoRepeat) {
  const std::string data = dir_.path() + "/data";
  std::vector<int64_t> sequences;
  std::string id;
  {
    AttunedProcess server(data, {"--data-roots", example_});
    id = Submit(server);
    // Follow the first part of the stream, then drop the connection.
    ASSERT_TRUE(WatchJobFor(server.address(), id, 0, 120, [&](const v1::JobEvent& e) {
                  sequences.push_back(e.sequence());
                  return sequences.size() < 40;
                }).ok());
    ASSERT_EQ(server.StopWith(SIGKILL, 10), 128 + SIGKILL);
  }
  ASSERT_EQ(sequences.size(), 40u);
  AttunedProcess server(data, {"--data-roots", example_});
  std::vector<v1::JobEvent> rest;
  ASSERT_TRUE(WatchJobFor(server.address(), id, sequences.back(), 120, [&](const v1::JobEvent& e) {
                rest.push_back(e);
                return true;
              }).ok());
  for (const v1::JobEvent& e : rest) sequences.push_back(e.sequence());
  for (size_t i = 0; i < sequences.size(); ++i) {
    ASSERT_EQ(sequences[i], static_cast<int64_t>(i) + 1) << "gap or repeat at position " << i;
  }
  ASSERT_FALSE(rest.empty());
  ASSERT_TRUE(rest.back().has_state_change());
  EXPECT_EQ(rest.back().state_change().state(), v1::SUCCEEDED);

  // A second watcher from the same point sees exactly the same events.
  std::vector<int64_t> again;
  ASSERT_TRUE(WatchJobFor(server.address(), id, 40, 120, [&](const v1::JobEvent& e) {
                again.push_back(e.sequence());
                return true;
              }).ok());
  EXPECT_EQ(again, std::vector<int64_t>(sequences.begin() + 40, sequences.end()));
}

}  // namespace
}  // namespace attune::testing
