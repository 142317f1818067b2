#include "server/api/data_roots.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace attune::api {
namespace {

namespace fs = std::filesystem;

class DataRootsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            ("attune_roots_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    fs::create_directories(base_ / "root" / "model");
    fs::create_directories(base_ / "outside");
    std::ofstream(base_ / "root" / "train.jsonl") << "{}\n";
    std::ofstream(base_ / "outside" / "secret.jsonl") << "{}\n";
    fs::create_symlink(base_ / "outside" / "secret.jsonl", base_ / "root" / "link.jsonl");
  }
  void TearDown() override { fs::remove_all(base_); }

  fs::path base_;
};

TEST_F(DataRootsTest, AcceptsFilesInsideAndResolvesThem) {
  auto roots = DataRoots::Create({(base_ / "root").string()});
  ASSERT_TRUE(roots.ok()) << roots.status();
  auto path = roots->Resolve("train", (base_ / "root" / "model" / ".." / "train.jsonl").string(),
                             PathKind::kFile);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, fs::canonical(base_ / "root" / "train.jsonl").string());
  EXPECT_TRUE(roots->Resolve("model", (base_ / "root" / "model").string(), PathKind::kDirectory).ok());
}

TEST_F(DataRootsTest, RefusesPathsOutsideNamingTheField) {
  auto roots = DataRoots::Create({(base_ / "root").string()});
  ASSERT_TRUE(roots.ok());
  auto dotdot = roots->Resolve("train", (base_ / "root" / ".." / "outside" / "secret.jsonl").string(),
                               PathKind::kFile);
  EXPECT_EQ(dotdot.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dotdot.status().message().find("train: "), 0u) << dotdot.status();
  EXPECT_NE(dotdot.status().message().find("is outside the data roots"), std::string::npos);

  auto link = roots->Resolve("validation", (base_ / "root" / "link.jsonl").string(), PathKind::kFile);
  EXPECT_EQ(link.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(link.status().message().find("validation: "), 0u);

  auto etc = roots->Resolve("train", "/etc/passwd", PathKind::kFile);
  EXPECT_EQ(etc.status().code(), absl::StatusCode::kInvalidArgument);
  // A root must not match a sibling that merely shares its prefix ("/x/root" vs "/x/rootless").
  fs::create_directories(base_ / "rootless");
  std::ofstream(base_ / "rootless" / "a.jsonl") << "{}\n";
  EXPECT_FALSE(roots->Resolve("train", (base_ / "rootless" / "a.jsonl").string(), PathKind::kFile).ok());
}

TEST_F(DataRootsTest, MissingOrWrongKindIsInvalidArgument) {
  auto roots = DataRoots::Create({(base_ / "root").string()});
  ASSERT_TRUE(roots.ok());
  auto missing = roots->Resolve("train", (base_ / "root" / "nope.jsonl").string(), PathKind::kFile);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);
  auto not_dir = roots->Resolve("model", (base_ / "root" / "train.jsonl").string(), PathKind::kDirectory);
  EXPECT_EQ(not_dir.status().code(), absl::StatusCode::kInvalidArgument);
  auto relative = roots->Resolve("train", "train.jsonl", PathKind::kFile);
  EXPECT_EQ(relative.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DataRootsTest, CreateRejectsMissingRoot) {
  EXPECT_EQ(DataRoots::Create({(base_ / "absent").string()}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DataRoots::Create({}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace attune::api
