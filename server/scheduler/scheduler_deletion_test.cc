// Scheduler::Delete and ArtifactBytes: a finished job's directory and records go, a live job's
// stay, and a watcher of a deleted job is answered NOT_FOUND at once.
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/scheduler_test_fixture.h"

namespace attune::scheduler {
namespace {

namespace fs = std::filesystem;
using store::JobState;
using testing_internal::SchedulerTest;
using testing_internal::WaitUntil;

// Writes `bytes` bytes at `path`, creating its directory.
void WriteFile(const fs::path& path, size_t bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << std::string(bytes, 'x');
}

TEST_F(SchedulerTest, DeleteRemovesAFinishedJobsDirectoryAndRecords) {
  Start({"cpu"}, 1);
  const std::string id = Submit(Spec(2));
  const std::string kept = Submit(Spec(2));
  runner_.Allow(id);
  runner_.Allow(kept);
  ASSERT_TRUE(WaitForState(id, JobState::kSucceeded));
  ASSERT_TRUE(WaitForState(kept, JobState::kSucceeded));
  const fs::path dir = fs::path(dir_) / "jobs" / id;
  WriteFile(dir / "checkpoint-2" / "adapter_model.safetensors", 100);
  WriteFile(dir / "checkpoint-2" / "resume" / "state.json", 23);
  WriteFile(fs::path(dir_) / "jobs" / kept / "checkpoint-2" / "adapter_model.safetensors", 7);
  EXPECT_EQ(scheduler_->ArtifactBytes(id).value(), 123);

  absl::StatusOr<int64_t> freed = scheduler_->Delete(id);
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, 123);

  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "jobs" / (".deleting-" + id)));
  EXPECT_EQ(store_->GetJob(id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListCheckpoints(id).value().empty());
  EXPECT_EQ(scheduler_->ArtifactBytes(id).value(), 0);
  // The other job is untouched.
  EXPECT_EQ(StateOf(kept), JobState::kSucceeded);
  EXPECT_EQ(store_->ListCheckpoints(kept).value().size(), 1u);
  EXPECT_EQ(scheduler_->ArtifactBytes(kept).value(), 7);
  EXPECT_EQ(scheduler_->Delete(id).status().code(), absl::StatusCode::kNotFound);
}

// A crash between moving a job's directory aside and deleting its rows, or after the rows went:
// the next start puts the files back, or finishes the removal.
TEST_F(SchedulerTest, StartRecoversADeletionACrashInterrupted) {
  Start({"cpu"}, 1);
  const std::string kept = Submit(Spec(1));
  runner_.Allow(kept);
  ASSERT_TRUE(WaitForState(kept, JobState::kSucceeded));
  scheduler_.reset();
  const fs::path jobs = fs::path(dir_) / "jobs";
  WriteFile(jobs / (".deleting-" + kept) / "checkpoint-1" / "adapter_model.safetensors", 5);
  WriteFile(jobs / ".deleting-j-gone" / "checkpoint-1" / "adapter_model.safetensors", 5);
  Start({"cpu"}, 1);
  EXPECT_TRUE(fs::exists(jobs / kept / "checkpoint-1" / "adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(jobs / (".deleting-" + kept)));
  EXPECT_FALSE(fs::exists(jobs / ".deleting-j-gone"));
}

TEST_F(SchedulerTest, AWatcherOfADeletedJobGetsNotFoundAtOnce) {
  Start({"cpu"}, 1);
  const std::string id = Submit(Spec(1));
  runner_.Allow(id);
  ASSERT_TRUE(WaitForState(id, JobState::kSucceeded));
  ASSERT_TRUE(scheduler_->Delete(id).ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<store::JobEvent>> events =
      scheduler_->WaitForEvents(id, 0, 0, absl::Seconds(30));
  EXPECT_EQ(events.status().code(), absl::StatusCode::kNotFound);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(SchedulerTest, DeleteRefusesAQueuedOrRunningJobAndKeepsItsFiles) {
  Start({"cpu"}, 1);
  const std::string running = Submit(Spec(3));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(running); }));
  const std::string queued = Submit(Spec(3));  // the only slot is taken
  const fs::path file = fs::path(dir_) / "jobs" / running / "checkpoint-1" / "adapter.bin";
  WriteFile(file, 10);

  absl::StatusOr<int64_t> refused = scheduler_->Delete(running);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(), "job " + running + " is RUNNING; cancel it first");
  refused = scheduler_->Delete(queued);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(), "job " + queued + " is QUEUED; cancel it first");
  EXPECT_TRUE(fs::exists(file));
  EXPECT_EQ(StateOf(running), JobState::kRunning);
  EXPECT_EQ(StateOf(queued), JobState::kQueued);

  runner_.Allow(running);
  runner_.Allow(queued);
  ASSERT_TRUE(WaitForState(queued, JobState::kSucceeded));
}

TEST_F(SchedulerTest, DeleteOfAnUnknownJobIsNotFound) {
  Start({"cpu"}, 1);
  EXPECT_EQ(scheduler_->Delete("j-0000000000000000").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace attune::scheduler
