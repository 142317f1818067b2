// Shared-base groups through attuned (attuned --share-base, one CPU slot), on attuned's threads
// (--job-processes off) and in worker processes (on: one attune-worker serves the group): three
// LoRA jobs with different targets, ranks and v ratios, submitted together, train on the one slot
// at once as one group (each says so in its events, naming the others), and each trains what it
// trains alone on a server without --share-base, where they run one after another: every step's
// loss within 1e-5 relative. kill -9 of a group's worker is a crash of each of its jobs: each is
// retried from its own checkpoint and completes. A DoRA job is not grouped: it waits for the slot.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

struct Job {
  std::string targets;
  int rank;
  std::string ratio;
};

const Job kJobs[] = {{"q,v", 8, "v=4"}, {"q,k,v", 4, "v=1"}, {"v,o", 16, "v=2"}};

// The log lines "attune-worker: job ID on cpu" of every worker.log under `dir`, by log.
std::vector<std::string> WorkerLogs(const std::string& dir) {
  std::vector<std::string> logs;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().filename() == "worker.log") logs.push_back(ReadFile(entry.path().string()));
  }
  return logs;
}

class ShareBaseTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    example_ = dir_.path() + "/example";
    fs::create_directories(example_);
    ASSERT_TRUE(MakeExample(example_));
    TurnOffModelDropout(example_ + "/model");  // a group's members share the generator
  }

  // attuned with --job-processes `processes` (the test's parameter, or off).
  std::unique_ptr<AttunedProcess> Start(const std::string& name, bool share,
                                        const std::string& processes = "off") {
    std::vector<std::string> args = {"--data-roots",    example_, "--job-processes", processes,
                                     "--retry-backoff", "0",      "--share-base=off"};
    if (share) args.back() = "--share-base";
    return std::make_unique<AttunedProcess>(dir_.path() + "/" + name, args);
  }

  std::string Submit(const AttunedProcess& server, const Job& job,
                     const std::vector<std::string>& extra = {}, int steps = 120) {
    std::vector<std::string> args = {"submit",
                                     "--model",
                                     example_ + "/model",
                                     "--train",
                                     example_ + "/train.jsonl",
                                     "--task",
                                     "classification",
                                     "--targets",
                                     job.targets,
                                     "--rank",
                                     std::to_string(job.rank),
                                     "--lr-ratio",
                                     job.ratio,
                                     "--lr",
                                     "5e-4",
                                     "--dropout",
                                     "0",
                                     "--max-seq-len",
                                     "64",
                                     "--max-steps",
                                     std::to_string(steps),
                                     "--seed",
                                     "5"};
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = RunCli(server.address(), args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }

  // Each step's loss, and the warnings.
  void Events(const AttunedProcess& server, const std::string& id,
              std::map<int64_t, double>* losses, std::vector<std::string>* warnings) {
    EXPECT_TRUE(WatchJobFor(server.address(), id, 0, 60, [&](const v1::JobEvent& e) {
                  if (e.has_step()) (*losses)[e.step().step()] = e.step().train_loss();
                  if (e.has_warning()) warnings->push_back(e.warning().message());
                  return true;
                }).ok());
  }

  TempDir dir_;
  std::string example_;
};

TEST_P(ShareBaseTest, JobsOnOneSlotTrainTogetherAndEachAsItDoesAlone) {
  std::unique_ptr<AttunedProcess> shared = Start("shared", true, GetParam());
  client::AttuneClient client(shared->address());
  std::vector<std::string> ids;
  for (const Job& job : kJobs) ids.push_back(Submit(*shared, job));
  for (const std::string& id : ids) {
    v1::Job done = WaitForJob(client, id, IsTerminal, 200);
    EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  }

  if (GetParam() == "on") {  // one worker trained them all: one log names the three jobs
    const std::vector<std::string> logs = WorkerLogs(dir_.path() + "/shared");
    ASSERT_EQ(logs.size(), 1u) << "each job had a worker of its own";
    for (const std::string& id : ids) {
      EXPECT_NE(logs[0].find("attune-worker: job " + id + " on cpu"), std::string::npos) << logs[0];
    }
  }

  std::unique_ptr<AttunedProcess> alone = Start("alone", false, GetParam());
  client::AttuneClient alone_client(alone->address());
  std::vector<std::string> solo_ids;
  for (const Job& job : kJobs) {
    solo_ids.push_back(Submit(*alone, job));
    v1::Job done = WaitForJob(alone_client, solo_ids.back(), IsTerminal, 200);
    EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  }

  int grouped = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::map<int64_t, double> losses, solo;
    std::vector<std::string> warnings, solo_warnings;
    Events(*shared, ids[i], &losses, &warnings);
    Events(*alone, solo_ids[i], &solo, &solo_warnings);
    ASSERT_EQ(losses.size(), 120u) << ids[i];
    ASSERT_EQ(solo.size(), 120u) << solo_ids[i];
    for (const auto& [step, loss] : solo) {
      EXPECT_NEAR(losses.at(step), loss, 1e-5 * std::abs(loss)) << ids[i] << " step " << step;
    }
    for (const std::string& w : warnings) {
      if (w.find("shares its frozen base model with job(s) ") == std::string::npos) continue;
      ++grouped;
      int named = 0;
      for (size_t j = 0; j < ids.size(); ++j)
        named += j != i && w.find(ids[j]) != std::string::npos;
      EXPECT_GE(named, 1) << "names none of the other jobs: " << w;
    }
    for (const std::string& w : solo_warnings)
      EXPECT_EQ(w.find("shares its frozen base"), std::string::npos);
  }
  EXPECT_GE(grouped, 2) << "the jobs did not train together on the one slot";
  // attune get names the jobs each trained beside, as text and in its JSON.
  int named = 0;
  for (const std::string& id : ids) {
    const v1::Job job = client.GetJob(id).value();
    for (const std::string& other : job.shared_base_with()) {
      EXPECT_NE(other, id);
      EXPECT_NE(std::find(ids.begin(), ids.end(), other), ids.end()) << other;
      ++named;
    }
    CliResult text = RunCli(shared->address(), {"get", id});
    EXPECT_EQ(text.out.find("shared    its base with ") == std::string::npos,
              job.shared_base_with().empty())
        << text.out;
    CliResult json = RunCli(shared->address(), {"--output", "json", "get", id});
    for (const std::string& other : job.shared_base_with()) {
      EXPECT_NE(json.out.find("\"" + other + "\""), std::string::npos) << json.out;
    }
  }
  EXPECT_GE(named, 2);
}

INSTANTIATE_TEST_SUITE_P(JobProcesses, ShareBaseTest, ::testing::Values("off", "on"),
                         [](const auto& info) { return "JobProcesses_" + info.param; });

// kill -9 of the one worker training three jobs: each job's attempt crashed, and each is
// retried, resumes from its own checkpoint and completes; attuned lives on.
TEST_F(ShareBaseTest, KillNineOfAGroupsWorkerRetriesEachOfItsJobs) {
  std::unique_ptr<AttunedProcess> shared = Start("killed", true, "on");
  client::AttuneClient client(shared->address());
  std::vector<std::string> ids;
  for (const Job& job : kJobs)
    ids.push_back(Submit(*shared, job, {"--checkpoint-every", "20"}, 200));
  for (const std::string& id : ids) {
    WaitForJob(
        client, id, [](const v1::Job& j) { return j.current_step() >= 50; }, 120);
  }
  const std::vector<pid_t> workers = WorkersOf(shared->pid());
  ASSERT_EQ(workers.size(), 1u) << "the three running jobs are not in one worker";
  ASSERT_EQ(kill(workers[0], SIGKILL), 0);
  for (const std::string& id : ids) {
    v1::Job done = WaitForJob(client, id, IsTerminal, 200);
    EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.error();
    EXPECT_EQ(done.current_step(), 200);
    std::vector<std::string> messages;
    EXPECT_TRUE(WatchJobFor(shared->address(), id, 0, 60, [&](const v1::JobEvent& e) {
                  if (e.has_state_change()) messages.push_back(e.state_change().message());
                  if (e.has_warning()) messages.push_back(e.warning().message());
                  return true;
                }).ok());
    std::string all;
    for (const std::string& m : messages) all += m + "\n";
    EXPECT_NE(all.find("was killed by signal 9"), std::string::npos) << id << ":\n" << all;
    EXPECT_NE(all.find("resumed from the checkpoint at step "), std::string::npos) << id << ":\n"
                                                                                   << all;
  }
}

// A DoRA job cannot share (DoRA changes the frozen product): it waits for the slot and runs
// alone; a LoRA job then still joins the group on the slot.
TEST_F(ShareBaseTest, DoraJobIsNotGrouped) {
  std::unique_ptr<AttunedProcess> shared = Start("dora", true);
  client::AttuneClient client(shared->address());
  const std::string lora = Submit(*shared, kJobs[0]);
  const std::string dora = Submit(*shared, kJobs[1], {"--method", "dora"});
  for (const std::string& id : {lora, dora}) {
    v1::Job done = WaitForJob(client, id, IsTerminal, 200);
    EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  }
  std::map<int64_t, double> losses;
  std::vector<std::string> warnings;
  Events(*shared, dora, &losses, &warnings);
  bool refused = false;  // it said why it did not join the LoRA job's slot
  for (const std::string& w : warnings) {
    EXPECT_EQ(w.find("shares its frozen base"), std::string::npos) << w;
    refused |= w.find("waits for a slot: does not share job " + lora + "'s base: method: dora") !=
               std::string::npos;
  }
  EXPECT_TRUE(refused) << "no event says why the DoRA job did not share";
  const v1::Job a = client.GetJob(lora).value(), b = client.GetJob(dora).value();
  EXPECT_GE(b.start_time().seconds() + 1, a.finish_time().seconds())
      << "the DoRA job started while the LoRA job held the slot";
}

}  // namespace
}  // namespace attune::testing
