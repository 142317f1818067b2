// Exactly once, under many crashes: while three jobs train, SIGKILL hits 50 times at random
// moments (a seeded generator, 100-2000 ms apart, so kills land during steps, checkpoint writes,
// event flushes and start-up): each time, at random, the running job's attune-worker (its
// attempt crashes and is retried; attuned stays) or attuned itself (restarted on the same data
// directory; its workers die with it). At the end no job is lost (all three SUCCEEDED, every
// step taken), every job's events are
// numbered 1, 2, 3, ... without a gap or a repeat, exactly one of them is a terminal state
// change and it is the last, and each job's adapter equals the adapter of the same job run
// without a crash (the resumes were bit-identical).
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kKills = 50;
// Long enough that the three jobs are still training through the 50 kills (60 steps were done
// after about half of them, so most worker kills found no worker: 8 of 50 in two CI runs; 150
// gave 21, with 30 resumes).
constexpr int kSteps = 150;

std::vector<std::string> JobArgs(const std::string& example, int seed) {
  return ExampleSubmitArgs(
      example, {"--max-steps", std::to_string(kSteps), "--checkpoint-every", "7", "--dropout",
                "0.1", "--seed", std::to_string(seed), "--max-retries", "100"});
}

std::string SubmitJob(const AttunedProcess& server, const std::string& example, int seed) {
  CliResult r = RunCli(server.address(), JobArgs(example, seed));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out.substr(0, r.out.find('\n'));
}

std::string Adapter(const AttunedProcess& server, const std::string& id, const std::string& dir) {
  CliResult r = RunCli(server.address(), {"download", id, "-o", dir});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return ReadFile(dir + "/adapter_model.safetensors");
}

// Every event of job `id`, checked: sequences 1..n, one terminal state change, the last. Adds
// to *resumes the times it resumed from a checkpoint.
void CheckEvents(const std::string& address, const std::string& id, int* resumes) {
  std::vector<v1::JobEvent> events;
  ASSERT_TRUE(WatchJobFor(address, id, 0, 60, [&](const v1::JobEvent& e) {
                events.push_back(e);
                return true;
              }).ok());
  ASSERT_FALSE(events.empty());
  int terminal = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    ASSERT_EQ(events[i].sequence(), static_cast<int64_t>(i + 1)) << id << " event " << i;
    const v1::JobState state = events[i].state_change().state();
    if (events[i].state_change().message().rfind("resumed from the checkpoint", 0) == 0) {
      ++*resumes;
    }
    if (events[i].has_state_change() &&
        (state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED)) {
      ++terminal;
      EXPECT_EQ(i + 1, events.size()) << id << ": an event after the terminal one";
    }
  }
  EXPECT_EQ(terminal, 1) << id;
}

TEST(ExactlyOnceTest, FiftyKillsOfWorkersAndAttunedLoseNoJobAndNoEvent) {
  TempDir dir;
  const std::string example = dir.path() + "/example";
  fs::create_directories(example);
  ASSERT_TRUE(MakeExample(example));
  const std::vector<int> seeds = {1, 2, 3};
  std::vector<std::string> straight;
  {
    AttunedProcess server(dir.path() + "/straight", {"--data-roots", example});
    client::AttuneClient client(server.address());
    for (int seed : seeds) {
      const std::string id = SubmitJob(server, example, seed);
      ASSERT_EQ(WaitForJob(client, id, IsTerminal, 120).state(), v1::SUCCEEDED);
      straight.push_back(Adapter(server, id, dir.path() + "/straight-" + id));
    }
  }
  const std::string data = dir.path() + "/crashing";
  std::vector<std::string> ids;
  std::mt19937 random(20261202);
  std::uniform_int_distribution<int> pause_ms(100, 2000);
  std::bernoulli_distribution kill_worker(0.5);
  const std::vector<std::string> args = {"--data-roots", example, "--retry-backoff", "0"};
  int kills = 0;
  int worker_kills = 0;
  {
    auto server = std::make_unique<AttunedProcess>(data, args);
    for (int seed : seeds) ids.push_back(SubmitJob(*server, example, seed));
    for (; kills < kKills; ++kills) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(random)));
      // A worker kill waits (up to 6 s) for the running job's worker, which starts about a
      // second after attuned or the previous attempt on a free machine, several on a loaded one
      // (3 s hit only 8 of 50 in a fresh-clone CI run beside a build).
      const pid_t worker = kill_worker(random) ? OneWorkerOf(server->pid(), 6) : 0;
      if (worker > 0) {
        ASSERT_EQ(kill(worker, SIGKILL), 0);
        ++worker_kills;
        continue;
      }
      ASSERT_EQ(server->StopWith(SIGKILL, 10), 128 + SIGKILL);
      server.reset();
      server = std::make_unique<AttunedProcess>(data, args);
      ASSERT_FALSE(server->address().empty()) << "attuned did not restart after kill " << kills;
    }
  }
  std::cout << "kills: " << kills << ", of a worker: " << worker_kills << "\n";
  EXPECT_GE(worker_kills, 10) << "too few kills hit a worker to test their crashes";
  AttunedProcess server(data, args);
  client::AttuneClient client(server.address());
  int resumes = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    SCOPED_TRACE(ids[i]);
    v1::Job job = WaitForJob(client, ids[i], IsTerminal, 180);
    ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.error();
    EXPECT_EQ(job.current_step(), kSteps);
    CheckEvents(server.address(), ids[i], &resumes);
    EXPECT_TRUE(Adapter(server, ids[i], dir.path() + "/crashed-" + ids[i]) == straight[i])
        << "the adapter after " << kills << " kills differs from the uninterrupted run's";
  }
  // The kills interrupted training, not only idle servers: every job resumed at least once.
  std::cout << "resumes from a checkpoint: " << resumes << "\n";
  EXPECT_GE(resumes, static_cast<int>(ids.size()));
}

}  // namespace
}  // namespace attune::testing
