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

}  // namespace
}  // namespace attune::scheduler
