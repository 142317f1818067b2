// RemoveTree: a nested tree goes, a missing path is fine, and a symlink inside the tree is
// removed without touching what it points to.
#include "common/remove_tree.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace attune {
namespace {

namespace fs = std::filesystem;

class RemoveTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("remove_tree_test_" + std::to_string(::getpid()));
    fs::create_directories(root_);
  }
  void TearDown() override { RemoveTree(root_.string()); }

  static void Write(const fs::path& path) { std::ofstream(path) << "x"; }

  fs::path root_;
};

TEST_F(RemoveTreeTest, RemovesANestedTree) {
  const fs::path tree = root_ / "tree";
  fs::create_directories(tree / "a" / "b");
  Write(tree / "top.txt");
  Write(tree / "a" / "b" / "deep.txt");
  std::string error;
  EXPECT_TRUE(RemoveTree(tree.string(), &error)) << error;
  EXPECT_FALSE(fs::exists(tree));
}

TEST_F(RemoveTreeTest, AMissingPathIsNotAnError) {
  std::string error;
  EXPECT_TRUE(RemoveTree((root_ / "absent").string(), &error)) << error;
  EXPECT_TRUE(error.empty());
}

TEST_F(RemoveTreeTest, RemovesLinksNotTheirTargets) {
  const fs::path outside = root_ / "outside";
  fs::create_directories(outside);
  Write(outside / "keep.txt");
  const fs::path tree = root_ / "tree";
  fs::create_directories(tree);
  fs::create_directory_symlink(outside, tree / "link");
  EXPECT_TRUE(RemoveTree(tree.string()));
  EXPECT_FALSE(fs::exists(tree));
  EXPECT_TRUE(fs::exists(outside / "keep.txt"));
}

TEST_F(RemoveTreeTest, RemovesAPlainFile) {
  Write(root_ / "file.txt");
  EXPECT_TRUE(RemoveTree((root_ / "file.txt").string()));
  EXPECT_FALSE(fs::exists(root_ / "file.txt"));
}

}  // namespace
}  // namespace attune
