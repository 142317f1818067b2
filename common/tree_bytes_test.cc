// TreeBytes: the regular files of a nested tree are summed, a symlink is not followed, and a
// missing path is 0 bytes.
#include "common/tree_bytes.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/remove_tree.h"
#include "gtest/gtest.h"

namespace attune {
namespace {

namespace fs = std::filesystem;

class TreeBytesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("tree_bytes_test_" + std::to_string(::getpid()));
    fs::create_directories(root_);
  }
  void TearDown() override { RemoveTree(root_.string()); }

  static void Write(const fs::path& path, size_t bytes) {
    std::ofstream(path) << std::string(bytes, 'x');
  }

  fs::path root_;
};

TEST_F(TreeBytesTest, SumsTheFilesOfANestedTree) {
  fs::create_directories(root_ / "tree" / "a" / "b");
  Write(root_ / "tree" / "top.bin", 1000);
  Write(root_ / "tree" / "a" / "mid.bin", 200);
  Write(root_ / "tree" / "a" / "b" / "deep.bin", 34);
  EXPECT_EQ(TreeBytes((root_ / "tree").string()).value(), 1234);
  EXPECT_EQ(TreeBytes((root_ / "tree" / "a").string()).value(), 234);
  EXPECT_EQ(TreeBytes((root_ / "tree" / "top.bin").string()).value(), 1000);
}

TEST_F(TreeBytesTest, DoesNotFollowSymlinks) {
  Write(root_ / "big.bin", 5000);
  fs::create_directories(root_ / "tree");
  Write(root_ / "tree" / "small.bin", 7);
  fs::create_symlink(root_ / "big.bin", root_ / "tree" / "link");
  fs::create_directory_symlink(root_, root_ / "tree" / "loop");
  EXPECT_EQ(TreeBytes((root_ / "tree").string()).value(), 7);
}

TEST_F(TreeBytesTest, AMissingPathIsZeroBytes) {
  EXPECT_EQ(TreeBytes((root_ / "missing").string()).value(), 0);
}

}  // namespace
}  // namespace attune
