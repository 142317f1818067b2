// Shared-base groups through attuned (attuned --share-base --job-processes off, one CPU slot):
// three LoRA jobs with different targets, ranks and v ratios, submitted together, train on the
// one slot at once as one group (each says so in its events, naming the others), and each trains
// what it trains alone on a server without --share-base, where they run one after another: every
// step's loss within 1e-5 relative. A DoRA job is not grouped: it waits for the slot.
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

class ShareBaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    example_ = dir_.path() + "/example";
    fs::create_directories(example_);
    ASSERT_TRUE(MakeExample(example_));
    TurnOffModelDropout(example_ + "/model");  // a group's members share the generator
  }

  std::unique_ptr<AttunedProcess> Start(const std::string& name, bool share) {
    std::vector<std::string> args = {"--data-roots", example_, "--job-processes", "off"};
    if (share) args.push_back("--share-base");
    return std::make_unique<AttunedProcess>(dir_.path() + "/" + name, args);
  }

  std::string Submit(const AttunedProcess& server, const Job& job,
                     const std::vector<std::string>& extra = {}) {
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
                                     "120",
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

TEST_F(ShareBaseTest, JobsOnOneSlotTrainTogetherAndEachAsItDoesAlone) {
  std::unique_ptr<AttunedProcess> shared = Start("shared", true);
  client::AttuneClient client(shared->address());
  std::vector<std::string> ids;
  for (const Job& job : kJobs) ids.push_back(Submit(*shared, job));
  for (const std::string& id : ids) {
    v1::Job done = WaitForJob(client, id, IsTerminal, 200);
    EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  }

  std::unique_ptr<AttunedProcess> alone = Start("alone", false);
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
  for (const std::string& w : warnings)
    EXPECT_EQ(w.find("shares its frozen base"), std::string::npos) << w;
  const v1::Job a = client.GetJob(lora).value(), b = client.GetJob(dora).value();
  EXPECT_GE(b.start_time().seconds() + 1, a.finish_time().seconds())
      << "the DoRA job started while the LoRA job held the slot";
}

}  // namespace
}  // namespace attune::testing
