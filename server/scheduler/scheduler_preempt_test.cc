// Priority preemption in the scheduler, with the fake runner (scheduler_test_fixture.h).
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/scheduler_test_fixture.h"

namespace attune::scheduler {
namespace {

using store::JobEvent;
using store::JobState;
using testing_internal::FakeRunner;
using testing_internal::SchedulerTest;
using testing_internal::WaitUntil;

// True when a message of `events` starts with `prefix`.
bool HasMessage(const std::vector<JobEvent>& events, const std::string& prefix) {
  for (const JobEvent& event : events) {
    if (event.message.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

TEST_F(SchedulerTest, HigherPriorityJobPreemptsALowerOneWhichResumesAtItsPlace) {
  preemption_ = true;
  Start({"cpu"}, 1);
  const std::string low = Submit(Spec(4, 0));
  runner_.Allow(low, 2);
  ASSERT_TRUE(WaitUntil([&] { return store_->GetJob(low).value().last_step == 2; }));
  const std::string later = Submit(Spec(1, 0));  // same priority as `low`, submitted after it
  const std::string high = Submit(Spec(1, 5));
  runner_.Allow(high);
  ASSERT_TRUE(WaitForState(high, JobState::kSucceeded));
  const std::vector<JobEvent> events = store_->EventsAfter(low, 0, 0).value();
  EXPECT_TRUE(HasMessage(events, "preempted by job " + high +
                                     " (priority 5) at step 2; queued "
                                     "again at its place, it resumes from its checkpoint"));
  runner_.Allow(low);
  runner_.Allow(later);
  ASSERT_TRUE(WaitForState(later, JobState::kSucceeded));
  EXPECT_EQ(StateOf(low), JobState::kSucceeded);
  // `low` kept its place ahead of `later`.
  EXPECT_EQ(runner_.starts(), (std::vector<std::string>{low, high, low, later}));
}

TEST_F(SchedulerTest, AJobIsNotPreemptedTwiceWithinTheGracePeriod) {
  preemption_ = true;
  Start({"cpu"}, 1);
  const std::string low = Submit(Spec(4, 0));
  runner_.Allow(low, 1);
  ASSERT_TRUE(WaitUntil([&] { return store_->GetJob(low).value().last_step == 1; }));
  const std::string first = Submit(Spec(1, 5));
  runner_.Allow(first);
  ASSERT_TRUE(WaitForState(first, JobState::kSucceeded));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(low); }));
  const std::string second = Submit(Spec(1, 5));
  runner_.Allow(second);
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_EQ(StateOf(second), JobState::kQueued);  // waits: `low` was preempted a moment ago
  EXPECT_TRUE(runner_.IsRunning(low));
  runner_.Allow(low);
  ASSERT_TRUE(WaitForState(second, JobState::kSucceeded));
  EXPECT_EQ(runner_.starts(), (std::vector<std::string>{low, first, low, second}));
}

TEST_F(SchedulerTest, EqualPriorityAndDisabledPreemptionNeverPreempt) {
  preemption_ = true;
  Start({"cpu"}, 1);
  const std::string running = Submit(Spec(2, 3));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(running); }));
  const std::string same = Submit(Spec(1, 3));
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_TRUE(runner_.IsRunning(running));
  EXPECT_EQ(StateOf(same), JobState::kQueued);
  runner_.Allow(running);
  runner_.Allow(same);
  ASSERT_TRUE(WaitForState(same, JobState::kSucceeded));

  scheduler_.reset();
  preemption_ = false;
  Start({"cpu"}, 1);
  const std::string low = Submit(Spec(2, 0));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(low); }));
  const std::string high = Submit(Spec(1, 9));
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_TRUE(runner_.IsRunning(low));
  runner_.Allow(low);
  runner_.Allow(high);
  ASSERT_TRUE(WaitForState(high, JobState::kSucceeded));
}

// A job of two CPU ranks preempts both one-slot jobs that hold the two slots, at once; the
// slot freed first is kept for it (not back-filled by the first job stopped) while the second
// finishes its step.
TEST_F(SchedulerTest, TwoRankJobPreemptsEnoughJobsAndKeepsTheSlotsFreedFirst) {
  preemption_ = true;
  Start({"cpu"}, 2);
  const std::string quick = Submit(Spec(4, 0));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(quick); }));
  const std::string slow = Submit(Spec(4, 0, 0, "slow-stop"));
  // `slow` stops only once allowed a step: allowed on every way out, so that teardown ends.
  struct AllowAtExit {
    FakeRunner& runner;
    std::string id;
    ~AllowAtExit() { runner.Allow(id); }
  } allow_at_exit{runner_, slow};
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(slow); }));
  JobSpec two_ranks = Spec(1, 5);
  two_ranks.ranks = 2;
  const std::string high = Submit(two_ranks);
  runner_.Allow(high);
  ASSERT_TRUE(WaitUntil([&] { return !runner_.IsRunning(quick); }));
  ASSERT_TRUE(WaitForState(quick, JobState::kQueued));
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_FALSE(runner_.IsRunning(quick));  // its freed slot waits for `high`
  EXPECT_EQ(StateOf(high), JobState::kQueued);
  EXPECT_TRUE(runner_.IsRunning(slow));
  runner_.Allow(slow, 1);  // `slow` ends its step and stops
  ASSERT_TRUE(WaitForState(high, JobState::kSucceeded));
  EXPECT_EQ(runner_.devices(high), (std::vector<std::string>{"cpu", "cpu"}));
  EXPECT_TRUE(HasMessage(store_->EventsAfter(quick, 0, 0).value(), "preempted by job " + high));
  EXPECT_TRUE(HasMessage(store_->EventsAfter(slow, 0, 0).value(), "preempted by job " + high));
  runner_.Allow(quick);
  runner_.Allow(slow);
  ASSERT_TRUE(WaitForState(quick, JobState::kSucceeded));
  ASSERT_TRUE(WaitForState(slow, JobState::kSucceeded));
  const std::vector<std::string> starts = runner_.starts();
  ASSERT_EQ(starts.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(starts.begin(), starts.begin() + 3),
            (std::vector<std::string>{quick, slow, high}));
}

// With one slot free, a two-rank job preempts only one job, the lowest priority one; it
// preempts none when all it could preempt would not make it fit.
TEST_F(SchedulerTest, TwoRankJobPreemptsOnlyAsManyJobsAsItNeeds) {
  preemption_ = true;
  Start({"cpu"}, 3);
  const std::string low = Submit(Spec(4, 0));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(low); }));
  const std::string mid = Submit(Spec(4, 1));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(mid); }));
  JobSpec two_ranks = Spec(1, 5);
  two_ranks.ranks = 2;
  const std::string high = Submit(two_ranks);
  runner_.Allow(high);
  ASSERT_TRUE(WaitForState(high, JobState::kSucceeded));
  EXPECT_EQ(runner_.devices(high), (std::vector<std::string>{"cpu", "cpu"}));
  EXPECT_TRUE(HasMessage(store_->EventsAfter(low, 0, 0).value(), "preempted by job " + high));
  EXPECT_FALSE(HasMessage(store_->EventsAfter(mid, 0, 0).value(), "preempted by"));
  EXPECT_TRUE(runner_.IsRunning(mid));
  runner_.Allow(low);
  runner_.Allow(mid);
  ASSERT_TRUE(WaitForState(low, JobState::kSucceeded));
  ASSERT_TRUE(WaitForState(mid, JobState::kSucceeded));

  // Three ranks on three slots, two of them held by a job of equal priority: preempting the
  // one lower job would not be enough, so nobody is stopped.
  scheduler_.reset();
  Start({"cpu"}, 3);
  const std::string lower = Submit(Spec(4, 0));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(lower); }));
  JobSpec equal_two = Spec(4, 5);
  equal_two.ranks = 2;
  const std::string equal = Submit(equal_two);
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(equal); }));
  JobSpec three_ranks = Spec(1, 5);
  three_ranks.ranks = 3;
  const std::string three = Submit(three_ranks);
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_TRUE(runner_.IsRunning(lower));
  EXPECT_FALSE(HasMessage(store_->EventsAfter(lower, 0, 0).value(), "preempted by"));
  EXPECT_EQ(StateOf(three), JobState::kQueued);
  runner_.Allow(lower);
  runner_.Allow(equal);
  runner_.Allow(three);
  ASSERT_TRUE(WaitForState(three, JobState::kSucceeded));
}

// Three slots, all held: one by a priority-0 job, two by a priority-1 job of two ranks. A
// two-rank job of priority 5 needs the two-rank job's slots; stopping the priority-0 job as well
// would not help it, so that one keeps running.
TEST_F(SchedulerTest, PreemptionSparesAJobWhoseSlotIsNotNeeded) {
  preemption_ = true;
  Start({"cpu"}, 3);
  const std::string low = Submit(Spec(4, 0));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(low); }));
  JobSpec mid_two = Spec(4, 1);
  mid_two.ranks = 2;
  const std::string mid = Submit(mid_two);
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(mid); }));
  JobSpec two_ranks = Spec(1, 5);
  two_ranks.ranks = 2;
  const std::string high = Submit(two_ranks);
  runner_.Allow(high);
  ASSERT_TRUE(WaitForState(high, JobState::kSucceeded));
  EXPECT_TRUE(HasMessage(store_->EventsAfter(mid, 0, 0).value(), "preempted by job " + high));
  EXPECT_FALSE(HasMessage(store_->EventsAfter(low, 0, 0).value(), "preempted by"));
  EXPECT_TRUE(runner_.IsRunning(low));
  runner_.Allow(low);
  runner_.Allow(mid);
  ASSERT_TRUE(WaitForState(mid, JobState::kSucceeded));
  ASSERT_TRUE(WaitForState(low, JobState::kSucceeded));
}

}  // namespace
}  // namespace attune::scheduler
