// Crashed attempts and JobSpec::max_retries, with the fake runner (scheduler_test_fixture.h): a
// job whose training throws (or returns a machine error: IsCrash) is queued again after a doubling
// backoff and resumes, at most max_retries times, counted across restarts; a job that fails for its
// input is never retried.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/scheduler/job_end.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/scheduler_test_fixture.h"

namespace attune::scheduler {
namespace {

using store::EventType;
using store::Job;
using store::JobEvent;
using store::JobState;
using testing_internal::SchedulerTest;
using testing_internal::WaitUntil;

int StartsOf(const std::vector<std::string>& starts, const std::string& id) {
  return static_cast<int>(std::count(starts.begin(), starts.end(), id));
}

bool HasEvent(const std::vector<JobEvent>& events, EventType type, JobState state,
              const std::string& message) {
  return std::any_of(events.begin(), events.end(), [&](const JobEvent& e) {
    return e.type == type && e.state == state && e.message.find(message) != std::string::npos;
  });
}

TEST_F(SchedulerTest, CrashedAttemptIsQueuedAgainAndTheJobSucceeds) {
  Start({"cpu"}, 1);
  const std::string id = Submit(Spec(3, 0, 0, "throw-once"));
  runner_.Allow(id);
  ASSERT_TRUE(WaitForState(id, JobState::kSucceeded));
  EXPECT_EQ(StartsOf(runner_.starts(), id), 2);
  const Job job = store_->GetJob(id).value();
  EXPECT_EQ(job.crashed_attempts, 1);
  EXPECT_TRUE(job.error.empty()) << job.error;
  const std::vector<JobEvent> events = store_->EventsAfter(id, 0, 0).value();
  EXPECT_TRUE(HasEvent(events, EventType::kWarning, JobState::kQueued,
                       "attempt 1 crashed at step 0: training crashed: boom"));
  EXPECT_TRUE(HasEvent(events, EventType::kStateChanged, JobState::kQueued,
                       "queued again after a crash (retry 1 of 2, in 20ms)"));
  EXPECT_EQ(events.back().state, JobState::kSucceeded);
}

TEST_F(SchedulerTest, JobThatAlwaysCrashesFailsAfterMaxRetries) {
  Start({"cpu"}, 1);
  const std::string id = Submit(Spec(3, 0, 0, "throw"));
  ASSERT_TRUE(WaitForState(id, JobState::kFailed));
  EXPECT_EQ(StartsOf(runner_.starts(), id), 3);  // the first attempt and max_retries = 2 more
  const Job job = store_->GetJob(id).value();
  EXPECT_EQ(job.error, "training crashed: boom");
  EXPECT_EQ(job.crashed_attempts, 3);
  const std::vector<JobEvent> events = store_->EventsAfter(id, 0, 0).value();
  EXPECT_EQ(events.back().message,
            "failed: training crashed: boom (3 crashed attempt(s); max_retries 2)");
  EXPECT_TRUE(HasEvent(events, EventType::kStateChanged, JobState::kQueued, "retry 2 of 2"));
}

TEST_F(SchedulerTest, InputErrorsAndZeroRetriesAreNotRetried) {
  Start({"cpu"}, 1);
  const std::string fails = Submit(Spec(3, 0, 0, "bad-input"));
  JobSpec none = Spec(3, 0, 0, "throw");
  none.max_retries = 0;
  const std::string crashes = Submit(none);
  ASSERT_TRUE(WaitForState(fails, JobState::kFailed));
  ASSERT_TRUE(WaitForState(crashes, JobState::kFailed));
  EXPECT_EQ(StartsOf(runner_.starts(), fails), 1);
  EXPECT_EQ(StartsOf(runner_.starts(), crashes), 1);
  EXPECT_EQ(store_->GetJob(fails).value().crashed_attempts, 0);
}

TEST_F(SchedulerTest, EngineErrorsOfTheMachineAreRetried) {
  Start({"cpu"}, 1);
  JobSpec spec = Spec(3, 0, 0, "fail");  // INTERNAL, as the engine maps an escaped exception
  spec.max_retries = 1;
  const std::string id = Submit(spec);
  ASSERT_TRUE(WaitForState(id, JobState::kFailed));
  EXPECT_EQ(StartsOf(runner_.starts(), id), 2);
  EXPECT_EQ(store_->GetJob(id).value().error, "CUDA out of memory on cuda:0");
}

TEST_F(SchedulerTest, RetriesWaitABackoffThatDoubles) {
  crash_backoff_ = absl::Milliseconds(150);
  Start({"cpu"}, 1);
  const absl::Time submitted = absl::Now();
  const std::string id = Submit(Spec(3, 0, 0, "throw"));
  ASSERT_TRUE(WaitForState(id, JobState::kFailed));
  EXPECT_GE(absl::Now() - submitted, absl::Milliseconds(150 + 300));
  const std::vector<JobEvent> events = store_->EventsAfter(id, 0, 0).value();
  EXPECT_TRUE(
      HasEvent(events, EventType::kStateChanged, JobState::kQueued, "retry 1 of 2, in 150ms"));
  EXPECT_TRUE(
      HasEvent(events, EventType::kStateChanged, JobState::kQueued, "retry 2 of 2, in 300ms"));
}

TEST_F(SchedulerTest, CrashedAttemptsCountAcrossARestart) {
  crash_backoff_ = absl::Hours(1);  // the retry would wait; the restart runs it at once
  Start({"cpu"}, 1);
  JobSpec spec = Spec(3, 0, 0, "throw");
  spec.max_retries = 1;
  const std::string id = Submit(spec);
  ASSERT_TRUE(WaitUntil([&] { return store_->GetJob(id).value().crashed_attempts == 1; }));
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  scheduler_.reset();
  Start({"cpu"}, 1);
  ASSERT_TRUE(WaitForState(id, JobState::kFailed));
  EXPECT_EQ(StartsOf(runner_.starts(), id), 2);  // not 3: the stored count said one was used
}

TEST_F(SchedulerTest, JobWaitingToRetryCanBeCancelled) {
  crash_backoff_ = absl::Hours(1);
  Start({"cpu"}, 1);
  const std::string id = Submit(Spec(3, 0, 0, "throw"));
  ASSERT_TRUE(WaitUntil([&] { return store_->GetJob(id).value().crashed_attempts == 1; }));
  ASSERT_TRUE(scheduler_->Cancel(id).ok());
  ASSERT_TRUE(WaitForState(id, JobState::kCancelled));
  EXPECT_EQ(StartsOf(runner_.starts(), id), 1);
}

// The checkpoint a run ended with is added to the store only when no record has its step (a
// crashed attempt wrote it and died before reporting it); failures and runs without one add none.
TEST(UnrecordedFinalCheckpointTest, AddsOnlyTheMissingFinalCheckpoint) {
  engine::TrainResult result;
  engine::CheckpointInfo last;
  last.step = 60;
  last.dir = "/d/jobs/j/checkpoints/step-00000060";
  last.adapter_bytes = 123;
  last.sha256 = "ab";
  last.eval_metric = 0.5;
  result.final_checkpoint = last;
  auto added = UnrecordedFinalCheckpoint(result, "j", {7, 14, 56}, 99);
  ASSERT_TRUE(added.has_value());
  EXPECT_EQ(added->job_id, "j");
  EXPECT_EQ(added->step, 60);
  EXPECT_EQ(added->dir, last.dir);
  EXPECT_EQ(added->bytes, 123);
  EXPECT_EQ(added->sha256, "ab");
  EXPECT_EQ(added->created_us, 99);
  EXPECT_EQ(added->eval_metric, std::optional<double>(0.5));
  EXPECT_FALSE(UnrecordedFinalCheckpoint(result, "j", {56, 60}, 99).has_value());
  EXPECT_FALSE(UnrecordedFinalCheckpoint(engine::TrainResult{}, "j", {}, 99).has_value());
  EXPECT_FALSE(UnrecordedFinalCheckpoint(absl::InternalError("x"), "j", {}, 99).has_value());
}

}  // namespace
}  // namespace attune::scheduler
