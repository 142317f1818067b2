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

  // The root as DataRoots reports it in messages (resolved).
  std::string Root() const { return fs::canonical(base_ / "root").string(); }

  fs::path base_;
};

TEST_F(DataRootsTest, AcceptsFilesInsideAndResolvesThem) {
  auto roots = DataRoots::Create({(base_ / "root").string()});
  ASSERT_TRUE(roots.ok()) << roots.status();
  auto path = roots->Resolve("train", (base_ / "root" / "model" / ".." / "train.jsonl").string(),
                             PathKind::kFile);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, fs::canonical(base_ / "root" / "train.jsonl").string());
  auto model = roots->Resolve("model", (base_ / "root" / "model").string(), PathKind::kDirectory);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(*model, fs::canonical(base_ / "root" / "model").string());
}

// The status Resolve must return: INVALID_ARGUMENT with exactly `message`.
void ExpectInvalid(const absl::StatusOr<std::string>& resolved, const std::string& message) {
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument) << resolved.status();
  EXPECT_EQ(resolved.status().message(), message);
}

TEST_F(DataRootsTest, DotDotOutsideIsRefusedNamingTheField) {
  auto roots = DataRoots::Create({(base_ / "root").string()});
  ASSERT_TRUE(roots.ok());
  const std::string path = (base_ / "root" / ".." / "outside" / "secret.jsonl").string();
  ExpectInvalid(roots->Resolve("train", path, PathKind::kFile),
                "train: " + path + " is outside the data roots (" + Root() + ")");
}

TEST_F(DataRootsTest, SymlinkPointingOutsideIsRefused) {
  auto roots = DataRoots::Create({(base_ / "root").string()});
  ASSERT_TRUE(roots.ok());
  const std::string link = (base_ / "root" / "link.jsonl").string();
  ExpectInvalid(roots->Resolve("validation", link, PathKind::kFile),
                "validation: " + link + " is outside the data roots (" + Root() + ")");
}

TEST_F(DataRootsTest, SystemFileIsRefused) {
  auto roots = DataRoots::Create({(base_ / "root").string()});
  ASSERT_TRUE(roots.ok());
  ExpectInvalid(roots->Resolve("train", "/etc/passwd", PathKind::kFile),
                "train: /etc/passwd is outside the data roots (" + Root() + ")");
}

// Outside is refused before existence is checked: the answer must not tell a client which
// files exist elsewhere on the server.
TEST_F(DataRootsTest, MissingPathOutsideIsOutsideNotMissing) {
  auto roots = DataRoots::Create({(base_ / "root").string()});
  ASSERT_TRUE(roots.ok());
  const std::string path = (base_ / "outside" / "absent.jsonl").string();
  ExpectInvalid(roots->Resolve("train", path, PathKind::kFile),
                "train: " + path + " is outside the data roots (" + Root() + ")");
}

// A root must not match a sibling that merely shares its prefix ("/x/root" vs "/x/rootless").
TEST_F(DataRootsTest, SiblingSharingThePrefixIsOutside) {
  auto roots = DataRoots::Create({(base_ / "root").string()});
  ASSERT_TRUE(roots.ok());
  fs::create_directories(base_ / "rootless");
  std::ofstream(base_ / "rootless" / "a.jsonl") << "{}\n";
  const std::string path = (base_ / "rootless" / "a.jsonl").string();
  ExpectInvalid(roots->Resolve("train", path, PathKind::kFile),
                "train: " + path + " is outside the data roots (" + Root() + ")");
}

TEST_F(DataRootsTest, MissingFileDoesNotExist) {
  auto roots = DataRoots::Create({(base_ / "root").string()});
  ASSERT_TRUE(roots.ok());
  const std::string path = (base_ / "root" / "nope.jsonl").string();
  ExpectInvalid(roots->Resolve("train", path, PathKind::kFile),
                "train: " + path + " does not exist");
}

TEST_F(DataRootsTest, WrongKindSaysWhatWasExpected) {
  auto roots = DataRoots::Create({(base_ / "root").string()});
  ASSERT_TRUE(roots.ok());
  const std::string file = (base_ / "root" / "train.jsonl").string();
  ExpectInvalid(roots->Resolve("model", file, PathKind::kDirectory),
                "model: " + file + " is not a directory");
  const std::string dir = (base_ / "root" / "model").string();
  ExpectInvalid(roots->Resolve("train", dir, PathKind::kFile),
                "train: " + dir + " is not a regular file");
}

TEST_F(DataRootsTest, RelativeOrEmptyPathIsRefused) {
  auto roots = DataRoots::Create({(base_ / "root").string()});
  ASSERT_TRUE(roots.ok());
  ExpectInvalid(roots->Resolve("train", "train.jsonl", PathKind::kFile),
                "train: train.jsonl is relative; the server needs an absolute path");
  ExpectInvalid(roots->Resolve("validation", "", PathKind::kFile), "validation: required");
}

TEST_F(DataRootsTest, CreateRejectsMissingRootFileRootAndNoRoots) {
  const std::string absent = (base_ / "absent").string();
  auto missing = DataRoots::Create({absent});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(),
            "--data-roots: " + absent + " is not an existing directory");
  const std::string file = (base_ / "root" / "train.jsonl").string();
  auto not_dir = DataRoots::Create({file});
  EXPECT_EQ(not_dir.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(not_dir.status().message(), "--data-roots: " + file + " is not an existing directory");
  auto none = DataRoots::Create({});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(none.status().message(), "--data-roots: at least one directory required");
}

}  // namespace
}  // namespace attune::api
