// Shared-base groups (training_group.h) on the example task, on the CPU in fp32: three jobs with
// different targets, ranks, ratios, learning rates and seeds, trained as one group, each see
// the losses and adapter of the same job run alone (to 1e-5 relative over 50 steps); a job whose
// loss goes non-finite fails alone while the others still match their solo runs; a member that
// stops leaves and resumes from its own checkpoint; and the frozen base is one copy.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/engine/adapter_file_diff.h"
#include "server/engine/frozen_cache.h"
#include "server/engine/lora.h"
#include "server/engine/model.h"
#include "server/engine/trainer.h"
#include "server/engine/training_group.h"
#include "server/tools/example_assets.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;

class Recorder : public TrainingObserver {
 public:
  explicit Recorder(int64_t stop_after = -1) : stop_after_(stop_after) {}
  void OnStart(const SpecCheck&, int64_t resumed_from_step) override {
    resumed_from = resumed_from_step;
  }
  void OnStep(const StepMetrics& m) override { steps.push_back(m); }
  void OnEval(const EvalMetrics&) override {}
  void OnCheckpoint(const CheckpointInfo&) override {}
  void OnWarning(const std::string& message) override { warnings.push_back(message); }
  void OnSharedBase(const std::vector<std::string>& names) override { beside = names; }
  bool StopRequested() override {
    return stop_after_ >= 0 && !steps.empty() && steps.back().step >= stop_after_;
  }

  std::vector<StepMetrics> steps;
  int64_t resumed_from = -1;
  std::vector<std::string> beside;  // the last OnSharedBase's names
  std::vector<std::string> warnings;

 private:
  int64_t stop_after_;
};

fs::path* root = nullptr;  // the example assets, for the whole suite

// The example job with `targets`, rank, v ratio, seed and learning rate; 50 steps, no validation.
TrainSpec Spec(std::vector<std::string> targets, int rank, double v_ratio, uint64_t seed,
               double lr) {
  TrainSpec spec;
  spec.model_dir = (*root / "model").string();
  spec.task = Task::kSequenceClassification;
  spec.train_path = (*root / "train.jsonl").string();
  spec.targets = std::move(targets);
  spec.lora_rank = rank;
  spec.lora_alpha = 2.0 * rank;
  spec.learning_rate = lr;
  spec.lr_ratios = {{"v", v_ratio}};
  spec.batch_size = 16;
  spec.max_seq_len = 64;
  spec.max_steps = 50;
  spec.warmup_steps = 5;
  spec.seed = seed;
  return spec;
}

// Different targets, ranks, v ratios, learning rates and seeds.
std::vector<TrainSpec> ThreeJobs() {
  return {Spec({"q", "v"}, 8, 4.0, 7, 2e-3), Spec({"q", "k", "v"}, 4, 1.0, 11, 1e-3),
          Spec({"v", "o", "up"}, 16, 2.0, 13, 3e-3)};
}

RunOptions Options(const std::string& name) {
  RunOptions options;
  options.output_dir = (*root / "runs" / name).string();
  fs::remove_all(options.output_dir);
  return options;
}

std::vector<double> Losses(const Recorder& r) {
  std::vector<double> losses;
  for (const StepMetrics& m : r.steps) losses.push_back(m.train_loss);
  return losses;
}

// Largest |a - b| / |b| over the steps; infinity when the counts differ.
double MaxRelative(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::abs(b[i]));
  }
  return worst;
}

std::string AdapterOf(const absl::StatusOr<TrainResult>& result) {
  return result->final_checkpoint->dir + "/adapter_model.safetensors";
}

// A job run alone: its losses and its final adapter file.
struct Solo {
  std::vector<double> losses;
  std::string adapter;
};

Solo RunAlone(const TrainSpec& spec, const std::string& name) {
  Recorder recorder;
  auto result = RunTraining(spec, Options(name), &recorder);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return {};
  return {Losses(recorder), AdapterOf(result)};
}

class GroupRunTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root = new fs::path(fs::temp_directory_path() /
                        ("attune_group_run_test_" + std::to_string(::getpid())));
    ASSERT_TRUE(WriteExampleAssets(root->string(), nullptr).ok());
    // Without the model's own dropout a job's numbers do not depend on the generator's draws,
    // which the members of a group share.
    const fs::path config = *root / "model" / "config.json";
    nlohmann::json c = nlohmann::json::parse(std::ifstream(config));
    c["hidden_dropout_prob"] = 0.0;
    c["attention_probs_dropout_prob"] = 0.0;
    std::ofstream(config) << c.dump(2);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root);
    delete root;
  }

  // `specs` each trained alone, once per `key` in the suite (tests of the same jobs share them).
  static const std::vector<Solo>& SoloRuns(const std::vector<TrainSpec>& specs,
                                           const std::string& key) {
    static auto* runs = new std::map<std::string, std::vector<Solo>>();
    auto it = runs->find(key);
    if (it != runs->end()) return it->second;
    std::vector<Solo> solo;
    for (size_t i = 0; i < specs.size(); ++i) {
      solo.push_back(RunAlone(specs[i], key + "_solo" + std::to_string(i)));
    }
    return runs->emplace(key, std::move(solo)).first->second;
  }

  // Trains `specs` alone and as one group (set up by `configure`): every member's 50 losses within
  // 1e-5 relative of its solo run's, and its adapter within 1e-4 of the solo one, element by
  // element; with `warning`, each member was warned with a message holding it.
  static void ExpectGroupMatchesSolo(const std::vector<TrainSpec>& specs, const std::string& name,
                                     const std::function<void(TrainingGroup&)>& configure = {},
                                     const std::string& warning = "",
                                     const std::string& solo_key = "") {
    const std::vector<Solo>& solo = SoloRuns(specs, solo_key.empty() ? name : solo_key);
    std::vector<Recorder> recorders(specs.size());
    std::vector<GroupJob> jobs;
    for (size_t i = 0; i < specs.size(); ++i) {
      jobs.push_back({"job" + std::to_string(i), specs[i],
                      Options(name + "_group" + std::to_string(i)), &recorders[i]});
    }
    std::vector<absl::StatusOr<TrainResult>> results(specs.size(), absl::InternalError("no end"));
    TrainingGroup group;
    if (configure) configure(group);
    for (size_t i = 0; i < specs.size(); ++i) {
      std::string why;
      ASSERT_TRUE(group.Join(
          jobs[i], [&results, i](absl::StatusOr<TrainResult> r) { results[i] = std::move(r); },
          &why))
          << why;
    }
    group.Run();
    for (size_t i = 0; i < specs.size(); ++i) {
      ASSERT_TRUE(results[i].ok()) << results[i].status();
      if (!warning.empty()) {
        EXPECT_TRUE(std::any_of(recorders[i].warnings.begin(), recorders[i].warnings.end(),
                                [&](const std::string& w) { return w.find(warning) != w.npos; }))
            << "job " << i << " was not warned: " << warning;
      }
      ASSERT_EQ(recorders[i].steps.size(), 50u) << "job " << i;
      EXPECT_LE(MaxRelative(Losses(recorders[i]), solo[i].losses), 1e-5) << "job " << i;
      // The adapters moved (B starts at zero): equal losses are not those of an untouched model.
      EXPECT_GT(MaxAbsLoraB(solo[i].adapter), 1e-3) << "job " << i;
      EXPECT_LE(MaxAdapterDifference(AdapterOf(results[i]), solo[i].adapter), 1e-4) << "job " << i;
      // It heard the names of the two it trained beside, not its own.
      std::vector<std::string> others;
      for (size_t j = 0; j < specs.size(); ++j) {
        if (j != i) others.push_back(jobs[j].name);
      }
      EXPECT_EQ(recorders[i].beside, others) << "job " << i;
    }
  }
};

// Packed steps of equal rows: the batched segmented product.
TEST_F(GroupRunTest, ThreePackedJobsEachMatchTheirSoloRuns) {
  ExpectGroupMatchesSolo(ThreeJobs(), "packed", {}, "", "three");
}

// Unpacked steps of 16, 8 and 12 examples padded to different lengths: one product per member,
// rows padded to the longest member's and masked.
TEST_F(GroupRunTest, UnpackedJobsOfDifferentBatchSizesMatchTheirSoloRuns) {
  std::vector<TrainSpec> specs = ThreeJobs();
  const int batch_sizes[] = {16, 8, 12};
  for (size_t i = 0; i < specs.size(); ++i) {
    specs[i].packing = false;
    specs[i].batch_size = batch_sizes[i];
  }
  ExpectGroupMatchesSolo(specs, "unpacked");
}

// Not fused: each member takes its own step over the shared base, one after another.
TEST_F(GroupRunTest, UnfusedMembersEachMatchTheirSoloRuns) {
  auto fused_steps = std::make_shared<int>(0);
  ExpectGroupMatchesSolo(
      ThreeJobs(), "unfused",
      [fused_steps](TrainingGroup& g) {
        g.set_fuse(false);
        g.set_fused_step_oom_for_test([fused_steps] { return ++*fused_steps < 0; });
      },
      "", "three");
  EXPECT_EQ(*fused_steps, 0) << "an unfused group took a fused step";
}

// A fused step that runs out of memory after its backward pass (step 10) is taken again by each
// member alone, its gradients of the failed step discarded; the group stops fusing, each member
// is warned, and each still trains exactly what it trains alone.
TEST_F(GroupRunTest, FusedStepOutOfMemoryFallsBackToOneMemberAtATime) {
  auto calls = std::make_shared<int>(0);
  ExpectGroupMatchesSolo(
      ThreeJobs(), "oom",
      [calls](TrainingGroup& g) {
        g.set_fused_step_oom_for_test([calls] { return ++*calls == 10; });
      },
      "fused step ran out of memory", "three");
  EXPECT_EQ(*calls, 10) << "the group went on fusing after the failed step";
}

// A member whose loss goes non-finite (a learning rate that overflows its adapter) fails alone;
// the other two still match their solo runs step for step.
TEST_F(GroupRunTest, NonFiniteMemberFailsAloneOthersUnaffected) {
  std::vector<TrainSpec> specs = ThreeJobs();
  specs[1].learning_rate = 1e38;
  const Solo solo0 = RunAlone(specs[0], "nan_solo0");
  const Solo solo2 = RunAlone(specs[2], "nan_solo2");
  std::vector<Recorder> recorders(3);
  std::vector<GroupJob> jobs;
  for (size_t i = 0; i < 3; ++i) {
    jobs.push_back({"job" + std::to_string(i), specs[i], Options("nan_group" + std::to_string(i)),
                    &recorders[i]});
  }
  std::vector<absl::StatusOr<TrainResult>> results = RunTrainingGroup(jobs);
  bool non_finite = !results[1].ok();
  for (const StepMetrics& m : recorders[1].steps) non_finite |= !std::isfinite(m.train_loss);
  EXPECT_TRUE(non_finite) << "the overflowing job stayed finite; the test shows nothing";
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  ASSERT_TRUE(results[2].ok()) << results[2].status();
  EXPECT_LE(MaxRelative(Losses(recorders[0]), solo0.losses), 1e-5);
  EXPECT_LE(MaxRelative(Losses(recorders[2]), solo2.losses), 1e-5);
}

// A member stopped at step 20 leaves (the others go on to match their solo runs), and resumed
// alone from its own checkpoint it goes on as its solo run did.
TEST_F(GroupRunTest, StoppedMemberLeavesAndResumesFromItsCheckpoint) {
  const std::vector<TrainSpec> specs = ThreeJobs();
  std::vector<Solo> solo;
  for (size_t i = 0; i < 3; ++i)
    solo.push_back(RunAlone(specs[i], "stop_solo" + std::to_string(i)));
  Recorder first(/*stop_after=*/20), second, third;
  Recorder* recorders[] = {&first, &second, &third};
  std::vector<GroupJob> jobs;
  for (size_t i = 0; i < 3; ++i) {
    jobs.push_back({"job" + std::to_string(i), specs[i], Options("stop_group" + std::to_string(i)),
                    recorders[i]});
  }
  const std::string resumable = jobs[0].options.output_dir;
  std::vector<absl::StatusOr<TrainResult>> results = RunTrainingGroup(jobs);
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_EQ(results[0]->outcome, Outcome::kStopped);
  EXPECT_EQ(results[0]->steps, 20);
  for (size_t i = 1; i < 3; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_LE(MaxRelative(Losses(*recorders[i]), solo[i].losses), 1e-5) << "job " << i;
  }
  Recorder resumed;
  RunOptions options;
  options.output_dir = resumable;
  auto result = RunTraining(specs[0], options, &resumed);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(resumed.resumed_from, 20);
  const std::vector<double> rest(solo[0].losses.begin() + 20, solo[0].losses.end());
  EXPECT_LE(MaxRelative(Losses(resumed), rest), 1e-5);
  EXPECT_LE(MaxAdapterDifference(AdapterOf(result), solo[0].adapter), 1e-4);
}

// Two members' models loaded through one cache hold the same frozen tensors (one copy of the
// base) and their own adapters; without the cache each has its own copy.
TEST_F(GroupRunTest, MembersShareOneCopyOfTheFrozenBase) {
  auto cache = std::make_shared<FrozenTensorCache>();
  ModelOptions a;
  a.targets = {"q", "v"};
  a.frozen_cache = cache;
  ModelOptions b = a;
  b.targets = {"k"};
  b.seed = 3;
  const std::string dir = (*root / "model").string();
  auto first = LoadModel(dir, a);
  auto second = LoadModel(dir, b);
  ModelOptions alone = a;
  alone.frozen_cache = nullptr;
  auto third = LoadModel(dir, alone);
  ASSERT_TRUE(first.ok() && second.ok() && third.ok());
  const std::vector<AdaptedLinearImpl*> p1 = (*first)->Projections();
  const std::vector<AdaptedLinearImpl*> p2 = (*second)->Projections();
  const std::vector<AdaptedLinearImpl*> p3 = (*third)->Projections();
  ASSERT_EQ(p1.size(), p2.size());
  for (size_t i = 0; i < p1.size(); ++i) {
    EXPECT_EQ(p1[i]->weight().data_ptr(), p2[i]->weight().data_ptr()) << i;
    EXPECT_NE(p1[i]->weight().data_ptr(), p3[i]->weight().data_ptr()) << i;
  }
  EXPECT_TRUE(p1[0]->lora_a().defined());   // layer 0's q: the first job's target
  EXPECT_FALSE(p2[0]->lora_a().defined());  // not the second's
  int64_t frozen = 0;
  for (AdaptedLinearImpl* p : p1) frozen += p->weight().numel();
  EXPECT_GT(cache->elements(), frozen);  // the projections and the embeddings, norms, ...
}

// Jobs that cannot share a step are refused with the field that differs.
TEST_F(GroupRunTest, IncompatibleJobsAreRefusedNamingTheField) {
  const TrainSpec base = ThreeJobs()[0];
  GroupJob job{"refused", base, Options("refused"), nullptr};
  GroupJob other = job;
  other.spec.method = Method::kDora;
  EXPECT_NE(GroupIncompatibility(other, job).find("method: dora"), std::string::npos);
  other = job;
  other.spec.model_dir = "/elsewhere";
  EXPECT_NE(GroupIncompatibility(other, job).find("model_dir"), std::string::npos);
  other = job;
  other.spec.task = Task::kRegression;
  EXPECT_NE(GroupIncompatibility(other, job).find("task"), std::string::npos);
  other = job;
  other.spec.max_seq_len = 32;
  EXPECT_NE(GroupIncompatibility(other, job).find("max_seq_len"), std::string::npos);
  other = job;
  other.spec.targets = {"k"};
  other.spec.lora_rank = 2;
  EXPECT_EQ(GroupIncompatibility(other, job), "");

  TrainingGroup group;
  std::string why;
  ASSERT_TRUE(group.Join(
      job, [](absl::StatusOr<TrainResult>) {}, &why))
      << why;
  GroupJob dora = job;
  dora.spec.method = Method::kDora;
  EXPECT_FALSE(group.Join(
      dora, [](absl::StatusOr<TrainResult>) {}, &why));
  EXPECT_NE(why.find("method: dora"), std::string::npos) << why;
}

}  // namespace
}  // namespace attune::engine
