#include "server/engine/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/sha256.h"

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
    c.adapter_config = {{"peft_type", "LORA"}, {"r", 2}};
    c.record = {{"step", step}};
    c.optimizer_state = {{"base_model.model.x.lora_A.weight.exp_avg", torch::full({2, 3}, value / 2)}};
    c.optimizer_steps = step;
    c.rng_state = torch::arange(8, torch::kUInt8);
    c.progress = {{"best_step", -1}};
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
  EXPECT_EQ(*Sha256File((fs::path(info->dir) / "adapter_model.safetensors").string()), info->sha256);

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
    EXPECT_EQ(ListCheckpointSteps(dir_.string()), std::vector<int64_t>{10});
    auto loaded = LoadLatestCheckpoint(dir_.string());
    ASSERT_TRUE(loaded.ok());
    ASSERT_TRUE(loaded->has_value());
    EXPECT_EQ((*loaded)->step, 10);
    EXPECT_TRUE(torch::equal((*loaded)->adapter.at("base_model.model.x.lora_A.weight"),
                             torch::full({2, 3}, 1.0f)));
  }
  // The debris is cleared by the next successful write.
  ASSERT_TRUE(WriteCheckpoint(dir_.string(), Content(30, 3.0f)).ok());
  for (const auto& entry : fs::directory_iterator(dir_ / "checkpoints")) {
    EXPECT_EQ(entry.path().extension(), "") << entry.path();
  }
}

TEST_F(CheckpointTest, PruneKeepsLastKAndTheBest) {
  for (int64_t step : {10, 20, 30, 40, 50}) {
    ASSERT_TRUE(WriteCheckpoint(dir_.string(), Content(step, 1.0f)).ok());
  }
  EXPECT_EQ(PruneCheckpoints(dir_.string(), 2, /*keep_step=*/20), (std::vector<int64_t>{10, 30}));
  EXPECT_EQ(ListCheckpointSteps(dir_.string()), (std::vector<int64_t>{20, 40, 50}));
}

TEST_F(CheckpointTest, NoCheckpointIsNullopt) {
  auto loaded = LoadLatestCheckpoint(dir_.string());
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value());
}

}  // namespace
}  // namespace attune::engine
