// Shared-base groups in the scheduler (SchedulerOptions::shares_device, share_base): a queued job
// with no free slot trains on a running job's slot when both rules allow it; refused, it waits
// and says why once in its events; on a device that does not share it waits without a word. The
// rules here are fakes: the engine's (GroupIncompatibility) is tested in training_group_test.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/scheduler_test_fixture.h"

namespace attune::scheduler {
namespace {

using store::JobState;
using testing_internal::SchedulerTest;
using testing_internal::WaitUntil;

class SchedulerShareTest : public SchedulerTest {
 protected:
  // One slot; jobs share it unless the queued one has rank 4 ("rank: 4 ..." is the refusal);
  // the device shares when `device_shares`.
  void StartSharing(bool device_shares) {
    shares_device_ = [device_shares](const std::string&) { return device_shares; };
    share_base_ = [](const TrainSpec& job, const TrainSpec&, const std::string&) {
      return job.lora_rank == 4 ? std::string("rank: 4, not the fake rule's 8") : std::string();
    };
    Start({"cpu"}, 1);
  }

  static JobSpec RankSpec(int rank) {
    JobSpec spec = Spec();
    spec.train.lora_rank = rank;
    return spec;
  }
};

TEST_F(SchedulerShareTest, CompatibleJobTrainsOnTheRunningJobsSlot) {
  StartSharing(true);
  const std::string a = Submit(RankSpec(8));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(a); }));
  const std::string b = Submit(RankSpec(8));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(b); })) << "b did not join a's slot";
  EXPECT_EQ(runner_.max_running(), 2);
  EXPECT_TRUE(Warnings(b).empty());
  runner_.Allow(a);
  runner_.Allow(b);
  ASSERT_TRUE(WaitForState(a, JobState::kSucceeded));
  ASSERT_TRUE(WaitForState(b, JobState::kSucceeded));
}

TEST_F(SchedulerShareTest, RefusedJobWaitsAndSaysWhyOnce) {
  StartSharing(true);
  const std::string a = Submit(RankSpec(8));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(a); }));
  const std::string b = Submit(RankSpec(4));
  ASSERT_TRUE(WaitUntil([&] { return Warnings(b).size() == 1; }));
  EXPECT_EQ(Warnings(b), (std::vector<std::string>{"waits for a slot: does not share job " + a +
                                                   "'s base: rank: 4, not the fake rule's 8"}));
  const std::string c = Submit(RankSpec(8));  // a later dispatch: b does not say it again
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(c); }));
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_FALSE(runner_.IsRunning(b));
  EXPECT_EQ(Warnings(b).size(), 1u);
  runner_.Allow(a);
  runner_.Allow(b);
  runner_.Allow(c);
  ASSERT_TRUE(WaitForState(b, JobState::kSucceeded));
  EXPECT_EQ(runner_.max_running(), 2);  // b waited for the slot to be free
}

// attuned's default --share-base=gpus on a CPU slot: nothing shares, and no job hears of it.
TEST_F(SchedulerShareTest, DeviceThatDoesNotShareGroupsNothingAndSaysNothing) {
  StartSharing(false);
  const std::string a = Submit(RankSpec(8));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(a); }));
  const std::string b = Submit(RankSpec(4));
  const std::string c = Submit(RankSpec(8));
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_FALSE(runner_.IsRunning(b));
  EXPECT_FALSE(runner_.IsRunning(c));
  EXPECT_TRUE(Warnings(b).empty());
  EXPECT_TRUE(Warnings(c).empty());
  runner_.Allow(a);
  runner_.Allow(b);
  runner_.Allow(c);
  ASSERT_TRUE(WaitForState(c, JobState::kSucceeded));
  EXPECT_EQ(runner_.max_running(), 1);
}

}  // namespace
}  // namespace attune::scheduler
