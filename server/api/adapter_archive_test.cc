#include "server/api/adapter_archive.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace attune::api {
namespace {

namespace fs = std::filesystem;

std::vector<store::CheckpointRecord> Records() {
  store::CheckpointRecord a, b, c;
  a.step = 10;
  a.eval_metric = 0.7;
  b.step = 20;
  b.eval_metric = 0.9;
  c.step = 30;
  c.eval_metric = 0.8;
  return {a, b, c};
}

TEST(SelectCheckpointTest, LatestBestAndStep) {
  EXPECT_EQ(SelectCheckpoint(Records(), "")->step, 30);
  EXPECT_EQ(SelectCheckpoint(Records(), "latest")->step, 30);
  EXPECT_EQ(SelectCheckpoint(Records(), "best")->step, 20);
  EXPECT_EQ(SelectCheckpoint(Records(), "step:10")->step, 10);
}

TEST(SelectCheckpointTest, Errors) {
  auto missing = SelectCheckpoint(Records(), "step:15");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "checkpoint: no checkpoint at step 15; available steps: 10, 20, 30");
  EXPECT_EQ(SelectCheckpoint(Records(), "newest").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SelectCheckpoint({}, "latest").status().code(), absl::StatusCode::kFailedPrecondition);
}

// The same rule as the engine's (common/metrics.h): the first checkpoint to reach a score stays
// the best, so "best" downloads the checkpoint that pruning kept.
TEST(SelectCheckpointTest, BestTieKeepsTheEarlierStep) {
  std::vector<store::CheckpointRecord> records = Records();
  records[2].eval_metric = 0.9;
  EXPECT_EQ(SelectCheckpoint(records, "best")->step, 20);
}

TEST(SelectCheckpointTest, BestFallsBackToLatestWithoutMetrics) {
  std::vector<store::CheckpointRecord> records(2);
  records[0].step = 5;
  records[1].step = 9;
  EXPECT_EQ(SelectCheckpoint(records, "best")->step, 9);
}

TEST(ListArchiveFilesTest, TopLevelFilesSortedThenResumeState) {
  fs::path dir = fs::temp_directory_path() / "attune_archive_test";
  fs::remove_all(dir);
  fs::create_directories(dir / "resume");
  std::ofstream(dir / "attune.json") << "{}";                   // 2 bytes
  std::ofstream(dir / "adapter_model.safetensors") << "12345";  // 5 bytes
  std::ofstream(dir / "adapter_config.json") << "abc";          // 3 bytes
  std::ofstream(dir / "x.tmp") << "debris";
  std::ofstream(dir / "resume" / "state.json") << "1234";  // 4 bytes

  auto files = ListArchiveFiles(dir.string(), false);
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[0].relative_path, "adapter_config.json");
  EXPECT_EQ((*files)[1].relative_path, "adapter_model.safetensors");
  EXPECT_EQ((*files)[1].offset, 3);
  EXPECT_EQ((*files)[2].relative_path, "attune.json");
  EXPECT_EQ((*files)[2].offset, 8);

  auto with_resume = ListArchiveFiles(dir.string(), true);
  ASSERT_EQ(with_resume->size(), 4u);
  EXPECT_EQ((*with_resume)[3].relative_path, "resume/state.json");
  EXPECT_EQ((*with_resume)[3].offset, 10);
  EXPECT_EQ((*with_resume)[3].size, 4);

  EXPECT_EQ(ListArchiveFiles((dir / "gone").string(), false).status().code(),
            absl::StatusCode::kNotFound);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace attune::api
