#include "common/confined_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>

#include "gtest/gtest.h"

namespace attune {
namespace {

// Far above the test files; the limit itself is tested in FileOverTheLimitIsRefused.
constexpr int64_t kLimit = 1 << 20;

namespace fs = std::filesystem;

class ConfinedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::canonical(fs::temp_directory_path()) /
            ("attune_confined_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    fs::create_directories(base_ / "root" / "model");
    fs::create_directories(base_ / "outside" / "model");
    std::ofstream(base_ / "root" / "model" / "config.json") << "inside";
    std::ofstream(base_ / "outside" / "secret") << "root:x:0:0";
    std::ofstream(base_ / "outside" / "model" / "config.json") << "outside";
    roots_ = {(base_ / "root").string()};
  }
  void TearDown() override { fs::remove_all(base_); }

  std::string Root(const std::string& rest) const { return (base_ / "root" / rest).string(); }
  std::string Outside(const std::string& path) const {
    return path + " is outside the data roots (" + (base_ / "root").string() + ")";
  }

  fs::path base_;
  std::vector<std::string> roots_;
};

TEST_F(ConfinedFileTest, ReadsAFileInsideTheRoots) {
  auto text = ReadInsideRoots(roots_, Root("model/config.json"), kLimit);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "inside");
}

// A link that stays inside the roots (a Hugging Face cache snapshot) is followed.
// A file over the limit is refused from its size, before it is read; one at the limit is read.
TEST_F(ConfinedFileTest, FileOverTheLimitIsRefused) {
  const std::string path = Root("model/config.json");  // "inside", 6 bytes
  auto text = ReadInsideRoots(roots_, path, 5);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(text.status().message(), path + ": 6 bytes; at most 5 allowed");
  text = ReadInsideRoots(roots_, path, 6);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "inside");
  // A sparse 8 GiB file costs no disk and no memory: only its size is looked at.
  const std::string sparse = Root("model/huge.json");
  std::ofstream(sparse).close();
  fs::resize_file(sparse, uintmax_t{8} << 30);
  text = ReadInsideRoots(roots_, sparse, kLimit);
  EXPECT_EQ(text.status().message(),
            sparse + ": 8589934592 bytes; at most " + std::to_string(kLimit) + " allowed");
}

TEST_F(ConfinedFileTest, LinkThatStaysInsideIsFollowed) {
  fs::create_symlink(Root("model/config.json"), Root("link.json"));
  auto text = ReadInsideRoots(roots_, Root("link.json"), kLimit);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "inside");
}

TEST_F(ConfinedFileTest, LinkToAFileOutsideIsRefused) {
  fs::create_symlink(base_ / "outside" / "secret", Root("model/model.safetensors"));
  auto text = ReadInsideRoots(roots_, Root("model/model.safetensors"), kLimit);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(text.status().message(), Outside(Root("model/model.safetensors")));
}

TEST_F(ConfinedFileTest, LinkInTheMiddleOfThePathIsRefused) {
  fs::create_directory_symlink(base_ / "outside" / "model", Root("linked"));
  const std::string path = Root("linked/config.json");
  auto file = OpenInsideRoots(roots_, path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(file.status().message(), Outside(path));
}

TEST_F(ConfinedFileTest, DotDotOutsideIsRefused) {
  const std::string path = Root("model/../../outside/secret");
  auto file = OpenInsideRoots(roots_, path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(file.status().message(), Outside(path));
}

// The race the walk closes: the path was resolved and checked, then a directory on the way
// (or the file itself) became a link to the outside before the open.
TEST_F(ConfinedFileTest, DirectoryReplacedByALinkAfterTheCheckIsNotFollowed) {
  auto resolved = ResolveInsideRoots(roots_, Root("model/config.json"));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  fs::rename(Root("model"), Root("model.old"));
  fs::create_directory_symlink(base_ / "outside" / "model", Root("model"));
  auto file = OpenWithoutLinks(*resolved);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(file.status().message(),
            *resolved + " changed while it was opened: a symbolic link on the way is not followed");
}

TEST_F(ConfinedFileTest, FileReplacedByALinkAfterTheCheckIsNotFollowed) {
  auto resolved = ResolveInsideRoots(roots_, Root("model/config.json"));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  fs::remove(Root("model/config.json"));
  fs::create_symlink(base_ / "outside" / "secret", Root("model/config.json"));
  auto file = OpenWithoutLinks(*resolved);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(file.status().message(),
            *resolved + " changed while it was opened: a symbolic link on the way is not followed");
}

TEST_F(ConfinedFileTest, MissingDirectoryFifoAndRelativePaths) {
  auto missing = OpenInsideRoots(roots_, Root("model/absent.json"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), Root("model/absent.json") + " does not exist");
  auto dir = OpenInsideRoots(roots_, Root("model"));
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dir.status().message(), Root("model") + " is not a regular file");
  // A FIFO would block a plain open until a writer comes; it is refused at once. (Should the
  // open block, a writer is opened after 5 s to release it, and the test fails.)
  ASSERT_EQ(mkfifo(Root("fifo").c_str(), 0600), 0);
  auto opening =
      std::async(std::launch::async, [&] { return OpenInsideRoots(roots_, Root("fifo")); });
  if (opening.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    ADD_FAILURE() << "opening a FIFO blocked";
    ScopedFd writer(::open(Root("fifo").c_str(), O_WRONLY | O_NONBLOCK));
    opening.wait();
  }
  auto fifo = opening.get();
  EXPECT_EQ(fifo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fifo.status().message(), Root("fifo") + " is not a regular file");
  auto relative = OpenInsideRoots(roots_, "model/config.json");
  EXPECT_EQ(relative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(relative.status().message(),
            "model/config.json is relative; the server needs an absolute path");
}

// No roots: anywhere, but still no link swapped in after resolution.
TEST_F(ConfinedFileTest, NoRootsMeansAnywhere) {
  auto text = ReadInsideRoots({}, (base_ / "outside" / "secret").string(), kLimit);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "root:x:0:0");
}

}  // namespace
}  // namespace attune
