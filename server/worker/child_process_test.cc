// ChildProcess: the exit a parent sees, the log a child writes, and no orphan: a child whose
// starting thread ends gets SIGKILL (PR_SET_PDEATHSIG).
#include "server/worker/child_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace attune::worker {
namespace {

namespace fs = std::filesystem;

class ChildProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / absl::StrCat("child_process_test_", getpid());
    fs::create_directories(dir_);
    log_ = (dir_ / "child.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Polls `child` until it ends (at most 10 s).
  static int Wait(ChildProcess& child) {
    for (int i = 0; i < 1000; ++i) {
      if (std::optional<int> status = child.Poll()) return *status;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the child did not end within 10 s";
    return -1;
  }

  fs::path dir_;
  std::string log_;
};

TEST_F(ChildProcessTest, OutputGoesToTheLogAndTheExitStatusIsKept) {
  auto child = ChildProcess::Start("/bin/sh", {"-c", "echo one; echo two >&2; exit 3"}, log_);
  ASSERT_TRUE(child.ok()) << child.status();
  const int status = Wait(**child);
  EXPECT_EQ(DescribeWaitStatus(status), "exited with status 3");
  EXPECT_EQ(LastLines(log_, 8, 2048), "one\ntwo");
  EXPECT_EQ(LastLines(log_, 1, 2048), "two");
}

TEST_F(ChildProcessTest, AKilledChildSaysWhichSignal) {
  auto child = ChildProcess::Start("/bin/sleep", {"30"}, log_);
  ASSERT_TRUE(child.ok()) << child.status();
  (*child)->Signal(SIGKILL);
  EXPECT_EQ(DescribeWaitStatus(Wait(**child)), "was killed by signal 9 (Killed)");
}

TEST_F(ChildProcessTest, SignalsBlockedInTheParentAreNotBlockedInTheChild) {
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  auto child = ChildProcess::Start("/bin/sleep", {"30"}, log_);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(child.ok()) << child.status();
  (*child)->Signal(SIGTERM);
  EXPECT_EQ(DescribeWaitStatus(Wait(**child)), "was killed by signal 15 (Terminated)");
}

TEST_F(ChildProcessTest, AMissingBinaryExits127WithTheReasonInTheLog) {
  auto child = ChildProcess::Start((dir_ / "no-such-binary").string(), {}, log_);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(DescribeWaitStatus(Wait(**child)), "exited with status 127");
  EXPECT_EQ(LastLines(log_, 8, 2048), "attune-worker: exec failed");
}

// The child's pid file is written by the child itself; once the thread that started it has
// ended, the kernel kills it.
TEST_F(ChildProcessTest, TheChildDiesWithTheThreadThatStartedIt) {
  const std::string pid_file = (dir_ / "pid").string();
  pid_t pid = 0;
  std::thread starter([&] {
    auto child =
        ChildProcess::Start("/bin/sh", {"-c", "echo $$ > " + pid_file + "; exec sleep 30"}, log_);
    ASSERT_TRUE(child.ok()) << child.status();
    pid = (*child)->pid();
    for (int i = 0; i < 500 && !fs::exists(pid_file); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    child->release();  // not killed by the destructor: only the thread's end may kill it
  });
  starter.join();
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(DescribeWaitStatus(status), "was killed by signal 9 (Killed)");
}

TEST(LastLinesTest, KeepsTheTailOfALongLog) {
  const fs::path path = fs::temp_directory_path() / absl::StrCat("last_lines_", getpid());
  {
    std::ofstream out(path);
    for (int i = 0; i < 100; ++i) out << "line " << i << "\n";
  }
  EXPECT_EQ(LastLines(path.string(), 2, 4096), "line 98\nline 99");
  EXPECT_EQ(LastLines(path.string(), 8, 13), "...e 98\nline 99");  // 13 bytes: "e 98\nline 99\n"
  EXPECT_EQ(LastLines((path.string() + ".missing"), 8, 10), "");
  fs::remove(path);
}

}  // namespace
}  // namespace attune::worker
