#include "server/engine/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/remove_tree.h"
#include "common/sha256.h"
#include "server/engine/checkpoint_keeper.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("attune_checkpoint_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static CheckpointContent Content(int64_t step, float value) {
    CheckpointContent c;
    c.step = step;
    c.adapter = {{"base_model.model.x.lora_A.weight", torch::full({2, 3}, value)},
                 {"base_model.model.x.lora_B.weight", torch::full({3, 2}, -value)}};
    c.adapter_config = PeftLoraConfig{};
    c.adapter_config->r = 2;
    c.record.step = step;
    c.optimizer_state = {
        {"base_model.model.x.lora_A.weight.exp_avg", torch::full({2, 3}, value / 2)}};
    c.optimizer_steps = step;
    c.rng_state = torch::arange(8, torch::kUInt8);
    c.progress.best_step = -1;
    return c;
  }

  fs::path dir_;
};

TEST_F(CheckpointTest, WritesPeftFilesAndLoadsTheLatest) {
  ASSERT_TRUE(WriteCheckpoint(dir_.string(), Content(10, 1.0f)).ok());
  auto info = WriteCheckpoint(dir_.string(), Content(20, 2.0f));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->step, 20);
  EXPECT_TRUE(fs::exists(fs::path(info->dir) / "adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(fs::path(info->dir) / "adapter_config.json"));
  EXPECT_TRUE(fs::exists(fs::path(info->dir) / "attune.json"));
  EXPECT_EQ(info->sha256.size(), 64u);
  EXPECT_EQ(*Sha256File((fs::path(info->dir) / "adapter_model.safetensors").string()),
            info->sha256);

  auto loaded = LoadLatestCheckpoint(dir_.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->step, 20);
  EXPECT_TRUE(torch::equal((*loaded)->adapter.at("base_model.model.x.lora_A.weight"),
                           torch::full({2, 3}, 2.0f)));
  EXPECT_EQ((*loaded)->optimizer_steps, 20);
  EXPECT_TRUE(torch::equal((*loaded)->rng_state, torch::arange(8, torch::kUInt8)));
  EXPECT_EQ((*loaded)->optimizer_state.count("__rng_state__"), 0u);
}

// A crash in the middle of a write must leave the previous checkpoint as the one a resume uses.
TEST_F(CheckpointTest, CrashDuringWriteLeavesPreviousCheckpoint) {
  ASSERT_TRUE(WriteCheckpoint(dir_.string(), Content(10, 1.0f)).ok());
  for (int fault_after = 0; fault_after < 5; ++fault_after) {
    auto failed = WriteCheckpoint(dir_.string(), Content(20, 2.0f), fault_after);
    EXPECT_EQ(failed.status().code(), absl::StatusCode::kInternal);
    EXPECT_EQ(*ListCheckpointSteps(dir_.string()), std::vector<int64_t>{10});
    auto loaded = LoadLatestCheckpoint(dir_.string());
    ASSERT_TRUE(loaded.ok());
    ASSERT_TRUE(loaded->has_value());
    EXPECT_EQ((*loaded)->step, 10);
    EXPECT_TRUE(torch::equal((*loaded)->adapter.at("base_model.model.x.lora_A.weight"),
                             torch::full({2, 3}, 1.0f)));
  }
  // The debris is cleared by the next prune (after the next successful write).
  ASSERT_TRUE(WriteCheckpoint(dir_.string(), Content(30, 3.0f)).ok());
  EXPECT_TRUE(PruneCheckpoints(dir_.string(), 10, -1).warnings.empty());
  for (const auto& entry : fs::directory_iterator(dir_ / "checkpoints")) {
    EXPECT_EQ(entry.path().extension(), "") << entry.path();
  }
}

TEST_F(CheckpointTest, PruneKeepsLastKAndTheBest) {
  for (int64_t step : {10, 20, 30, 40, 50}) {
    ASSERT_TRUE(WriteCheckpoint(dir_.string(), Content(step, 1.0f)).ok());
  }
  PruneResult pruned = PruneCheckpoints(dir_.string(), 2, /*keep_step=*/20);
  EXPECT_EQ(pruned.deleted, (std::vector<int64_t>{10, 30}));
  EXPECT_TRUE(pruned.warnings.empty());
  EXPECT_EQ(*ListCheckpointSteps(dir_.string()), (std::vector<int64_t>{20, 40, 50}));
}

// Removes like RemoveTree, except that step 10's checkpoint fails as a read-only file system
// would (root may remove anything, so the failure is injected).
bool RemoveAllButStep10(const std::string& path, std::string* error) {
  if (fs::path(path).filename() == "step-00000010") {
    *error = path + ": Read-only file system";
    return false;
  }
  return RemoveTree(path, error);
}

TEST_F(CheckpointTest, PruneWarnsAboutACheckpointItCannotRemove) {
  for (int64_t step : {10, 20, 30}) {
    ASSERT_TRUE(WriteCheckpoint(dir_.string(), Content(step, 1.0f)).ok());
  }
  PruneResult pruned = PruneCheckpoints(dir_.string(), 1, /*keep_step=*/-1, RemoveAllButStep10);
  EXPECT_EQ(pruned.deleted, std::vector<int64_t>{20});
  const std::string path = (dir_ / "checkpoints" / "step-00000010").string();
  EXPECT_EQ(pruned.warnings, std::vector<std::string>{"checkpoints: cannot remove step 10: " +
                                                      path + ": Read-only file system"});
  EXPECT_EQ(*ListCheckpointSteps(dir_.string()), (std::vector<int64_t>{10, 30}));
}

// A file where the checkpoints directory should be: listing fails with the reason instead of
// looking like "no checkpoints" (which would restart the job from step 0).
TEST_F(CheckpointTest, UnlistableCheckpointsDirectoryIsAnError) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "checkpoints") << "not a directory";
  const std::string expected =
      "checkpoints: cannot list " + (dir_ / "checkpoints").string() + ": Not a directory";
  auto steps = ListCheckpointSteps(dir_.string());
  EXPECT_EQ(steps.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(steps.status().message(), expected);
  auto loaded = LoadLatestCheckpoint(dir_.string());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(loaded.status().message(), expected);
  EXPECT_EQ(PruneCheckpoints(dir_.string(), 1, -1).warnings, std::vector<std::string>{expected});
}

TEST_F(CheckpointTest, ResumeProgressRoundTrips) {
  CheckpointContent content = Content(10, 1.0f);
  content.progress = {0.75, 10, 0.5};
  ASSERT_TRUE(WriteCheckpoint(dir_.string(), content).ok());
  auto loaded = LoadLatestCheckpoint(dir_.string());
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ((*loaded)->progress.best_score, 0.75);
  EXPECT_EQ((*loaded)->progress.best_step, 10);
  EXPECT_EQ((*loaded)->progress.train_loss, 0.5);
}

class RecordingObserver : public TrainingObserver {
 public:
  void OnStep(const StepMetrics&) override {}
  void OnEval(const EvalMetrics&) override {}
  void OnCheckpoint(const CheckpointInfo& c) override { checkpoints.push_back(c); }
  void OnWarning(const std::string& w) override { warnings.push_back(w); }
  bool StopRequested() override { return false; }
  std::vector<CheckpointInfo> checkpoints;
  std::vector<std::string> warnings;
};

// The keeper passes a checkpoint that could not be pruned to the observer as a warning, and
// never reports it as deleted.
TEST_F(CheckpointTest, KeeperWarnsAboutACheckpointItCannotPrune) {
  RecordingObserver observer;
  CheckpointKeeper keeper(dir_.string(), /*keep_last=*/1, EvalMetric::kAccuracy, &observer,
                          RemoveAllButStep10);
  for (int64_t step : {10, 20, 30}) ASSERT_TRUE(keeper.Save(Content(step, 1.0f), {}).ok());
  ASSERT_EQ(observer.checkpoints.size(), 3u);
  EXPECT_EQ(observer.checkpoints[1].deleted_steps, std::vector<int64_t>{});
  EXPECT_EQ(observer.checkpoints[2].deleted_steps, std::vector<int64_t>{20});
  const std::string warning =
      "checkpoints: cannot remove step 10: " + (dir_ / "checkpoints" / "step-00000010").string() +
      ": Read-only file system";
  EXPECT_EQ(observer.warnings, (std::vector<std::string>{warning, warning}));
  EXPECT_EQ(keeper.last_step(), 30);
}

TEST_F(CheckpointTest, NoCheckpointIsNullopt) {
  auto loaded = LoadLatestCheckpoint(dir_.string());
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value());
}

}  // namespace
}  // namespace attune::engine
