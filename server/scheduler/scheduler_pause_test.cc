// PauseJob and ResumeJob in the scheduler, with the fake runner (scheduler_test_fixture.h):
// queued and running jobs pause, keep their place, stay paused across a restart, and resume.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/scheduler_test_fixture.h"

namespace attune::scheduler {
namespace {

using store::Job;
using store::JobEvent;
using store::JobState;
using testing_internal::SchedulerTest;
using testing_internal::WaitUntil;

TEST_F(SchedulerTest, RunningJobPausesAtAStepFreesItsSlotAndResumes) {
  Start({"cpu"}, 1);
  const std::string id = Submit(Spec(4));
  runner_.Allow(id, 2);
  ASSERT_TRUE(WaitUntil([&] { return store_->GetJob(id).value().last_step == 2; }));
  const std::string next = Submit(Spec(1));
  ASSERT_TRUE(scheduler_->Pause(id).ok());
  ASSERT_TRUE(WaitForState(id, JobState::kPaused));
  const std::vector<JobEvent> events = store_->EventsAfter(id, 0, 0).value();
  EXPECT_EQ(events.back().message, "paused at step 2; ResumeJob continues from its checkpoint");
  // Its slot went to the next job, and a paused job is never dispatched.
  runner_.Allow(next);
  ASSERT_TRUE(WaitForState(next, JobState::kSucceeded));
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_EQ(StateOf(id), JobState::kPaused);
  // Pausing it again changes nothing; resuming twice is refused the second time.
  EXPECT_EQ(scheduler_->Pause(id).value().state, JobState::kPaused);
  EXPECT_EQ(scheduler_->Resume(id).value().state, JobState::kQueued);
  absl::Status again = scheduler_->Resume(id).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  runner_.Allow(id);
  ASSERT_TRUE(WaitForState(id, JobState::kSucceeded));
  EXPECT_EQ(runner_.starts(), (std::vector<std::string>{id, next, id}));
}

TEST_F(SchedulerTest, PausedJobKeepsItsPlaceAcrossARestart) {
  Start({"cpu"}, 1);
  const std::string blocker = Submit(Spec(1));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(blocker); }));
  const std::string first = Submit(Spec(1));
  const std::string second = Submit(Spec(1));
  ASSERT_EQ(scheduler_->Pause(first).value().state, JobState::kPaused);
  EXPECT_EQ(store_->EventsAfter(first, 0, 0).value().back().message, "paused while queued");
  scheduler_.reset();  // a restart: `first` must stay paused and keep its place
  Start({"cpu"}, 1);
  EXPECT_EQ(StateOf(first), JobState::kPaused);
  ASSERT_EQ(scheduler_->Resume(first).value().state, JobState::kQueued);
  runner_.Allow(first);
  runner_.Allow(second);
  runner_.Allow(blocker);
  ASSERT_TRUE(WaitForState(second, JobState::kSucceeded));
  ASSERT_TRUE(WaitForState(first, JobState::kSucceeded));
  // Submission order, as if it had never been paused: the blocker held the one slot (it started
  // before the restart and again after it), then `first`, then `second`.
  EXPECT_EQ(runner_.starts(), (std::vector<std::string>{blocker, blocker, first, second}));
}

TEST_F(SchedulerTest, PausedJobCanBeCancelledAndFinishedJobsCannotBePaused) {
  Start({"cpu"}, 1);
  const std::string id = Submit(Spec(2));
  runner_.Allow(id);
  ASSERT_TRUE(WaitForState(id, JobState::kSucceeded));
  absl::Status late = scheduler_->Pause(id).status();
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(late.message(),
            "job " + id + " is SUCCEEDED; only QUEUED or RUNNING jobs can be paused");
  EXPECT_EQ(scheduler_->Resume(id).status().message(),
            "job " + id + " is SUCCEEDED; only PAUSED jobs can be resumed");
  EXPECT_EQ(scheduler_->Pause("nope").status().code(), absl::StatusCode::kNotFound);

  const std::string paused = Submit(Spec(2));
  const std::string blocked = Submit(Spec(2));
  ASSERT_TRUE(scheduler_->Pause(blocked).ok());
  EXPECT_EQ(scheduler_->Cancel(blocked).value().state, JobState::kCancelled);
  EXPECT_EQ(store_->EventsAfter(blocked, 0, 0).value().back().message, "cancelled while paused");
  // A cancel after a pause request of a running job wins: it ends CANCELLED, not PAUSED.
  runner_.Allow(paused, 1);
  ASSERT_TRUE(WaitUntil([&] { return store_->GetJob(paused).value().last_step == 1; }));
  ASSERT_TRUE(scheduler_->Pause(paused).ok());
  ASSERT_TRUE(scheduler_->Cancel(paused).ok());
  ASSERT_TRUE(WaitForState(paused, JobState::kCancelled));
}

}  // namespace
}  // namespace attune::scheduler
