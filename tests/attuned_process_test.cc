// The test harness itself: its waits end at their deadlines, and the standard streams reach the
// child and come back.
#include "tests/attuned_process.h"

#include <signal.h>

#include <chrono>
#include <string>

#include "gtest/gtest.h"

namespace attune::testing {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

TEST(ChildProcessTest, WaitEndsAtItsDeadlineAndStopWithReportsTheSignal) {
  ChildProcess child({"/bin/sleep", "30"}, "/dev/null");
  const auto start = Clock::now();
  EXPECT_EQ(child.Wait(1), -1);
  EXPECT_LT(SecondsSince(start), 3.0);
  EXPECT_EQ(child.StopWith(SIGTERM, 5), 128 + SIGTERM);
  EXPECT_EQ(child.pid(), -1);
}

TEST(ChildProcessTest, ExitCodesAndExecFailure) {
  EXPECT_EQ(ChildProcess({"/bin/sh", "-c", "exit 3"}, "/dev/null").Wait(10), 3);
  EXPECT_EQ(ChildProcess({"/nonexistent/program"}, "/dev/null").Wait(10), 127);
}

TEST(RunProgramTest, FeedsStdinAndCollectsStdoutAndStderr) {
  std::string out;
  EXPECT_EQ(RunProgram({"/bin/sh", "-c", "cat; echo err >&2"}, "hello\n", &out, 10), 0);
  EXPECT_EQ(out, "hello\nerr\n");
  // More input than a pipe holds, read as it is written.
  const std::string big(1 << 20, 'x');
  out.clear();
  EXPECT_EQ(RunProgram({"/usr/bin/wc", "-c"}, big, &out, 30), 0);
  EXPECT_EQ(out, "1048576\n");
}

TEST(RunProgramTest, AProgramThatNeverEndsIsStoppedAtTheDeadline) {
  std::string out;
  const auto start = Clock::now();
  EXPECT_EQ(RunProgram({"/bin/sleep", "30"}, "", &out, 1), -1);
  EXPECT_LT(SecondsSince(start), 5.0);
}

TEST(RunProgramTest, AProgramThatIgnoresItsInputDoesNotKillTheTest) {
  std::string out;
  EXPECT_EQ(RunProgram({"/bin/true"}, std::string(1 << 20, 'x'), &out, 10), 0);
}

}  // namespace
}  // namespace attune::testing
