// Events and watchers, store failures, shutdown and restart, statistics.
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/scheduler_test_fixture.h"

namespace attune::scheduler {
namespace {

using store::EventType;
using store::Job;
using store::JobEvent;
using store::JobState;
using testing_internal::FakeRunner;
using testing_internal::SchedulerTest;
using testing_internal::WaitUntil;

TEST_F(SchedulerTest, EventsAreGaplessAndWatchersSeeEveryOne) {
  Start({"cpu"}, 1);
  std::string id = Submit(Spec(5));
  // Nothing new yet after the first events: the wait times out empty.
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(id); }));
  int64_t seen = store_->LastEventSequence(id).value();
  EXPECT_TRUE(scheduler_->WaitForEvents(id, seen, 100, absl::Milliseconds(30)).value().empty());

  // The watcher reads the first event, then follows the in-memory tail from there.
  std::vector<JobEvent> all = scheduler_->WaitForEvents(id, 0, 1, absl::Seconds(5)).value();
  ASSERT_EQ(all.size(), 1u);
  std::thread watcher([&] {
    int64_t after = 1;
    while (true) {
      std::vector<JobEvent> batch =
          scheduler_->WaitForEvents(id, after, 3, absl::Seconds(5)).value();
      if (batch.empty()) break;  // terminal and caught up
      after = batch.back().sequence;
      all.insert(all.end(), batch.begin(), batch.end());
    }
  });
  runner_.Allow(id);
  watcher.join();

  ASSERT_EQ(all.size(), 10u);  // QUEUED, RUNNING, 5 steps, eval, checkpoint, SUCCEEDED
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].sequence, static_cast<int64_t>(i + 1));
  EXPECT_EQ(all[0].state, JobState::kQueued);
  EXPECT_EQ(all[1].state, JobState::kRunning);
  EXPECT_EQ(all[1].message, "running on cpu");
  EXPECT_EQ(all[1].devices, std::vector<std::string>{"cpu"});
  EXPECT_EQ(all[0].time_us, clock_.NowUs());  // stamped by the scheduler's clock
  for (int step = 1; step <= 5; ++step) {
    EXPECT_EQ(all[1 + step].type, EventType::kMetrics);
    EXPECT_EQ(all[1 + step].step, step);
    ASSERT_TRUE(all[1 + step].step_metrics.has_value());
    EXPECT_DOUBLE_EQ(all[1 + step].step_metrics->train_loss, 1.0 / step);
    EXPECT_DOUBLE_EQ(all[1 + step].step_metrics->learning_rates.at("v.lora_A"), 4e-4);
    EXPECT_EQ(all[1 + step].step_metrics->total_steps, 5);
  }
  EXPECT_EQ(all[7].type, EventType::kEval);
  ASSERT_TRUE(all[7].eval.has_value());
  EXPECT_DOUBLE_EQ(*all[7].eval->accuracy, 0.95);
  EXPECT_EQ(all[8].type, EventType::kCheckpoint);
  EXPECT_EQ(all[8].bytes, 1234);
  EXPECT_EQ(all[9].state, JobState::kSucceeded);

  Job job = store_->GetJob(id).value();
  EXPECT_EQ(job.last_step, 5);
  EXPECT_EQ(job.total_steps, 5);
  EXPECT_EQ(job.adapter_bytes, 1234);
  EXPECT_EQ(job.trainable_parameters, 11);  // from OnStart, replacing the submit-time check
  ASSERT_TRUE(job.latest_step.has_value());
  EXPECT_DOUBLE_EQ(job.latest_step->train_loss, 0.2);
  ASSERT_TRUE(job.latest_eval.has_value());
  EXPECT_DOUBLE_EQ(*job.latest_eval->accuracy, 0.95);
  std::vector<store::CheckpointRecord> checkpoints = store_->ListCheckpoints(id).value();
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].step, 5);
  EXPECT_EQ(checkpoints[0].sha256, "cafe");
  EXPECT_DOUBLE_EQ(*checkpoints[0].eval_metric, 0.95);
  // Finished and caught up: returns at once, empty.
  EXPECT_TRUE(scheduler_->WaitForEvents(id, 10, 10, absl::Seconds(30)).value().empty());
  EXPECT_EQ(scheduler_->WaitForEvents("j-none", 0, 10, absl::Seconds(1)).status().code(),
            absl::StatusCode::kNotFound);
}

// Every event reaches watchers through one path: a watcher that has read "queued" sees "running
// on cpu" as soon as the job starts, not at the first step's flush.
TEST_F(SchedulerTest, RunningEventReachesAWatcherAtTheTailBeforeAnyStep) {
  Start({"cpu"}, 1);
  std::string id = Submit(Spec(5));  // no step is allowed until the end of the test
  std::vector<JobEvent> first = scheduler_->WaitForEvents(id, 0, 0, absl::Seconds(5)).value();
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first[0].state, JobState::kQueued);
  std::vector<JobEvent> next;
  int64_t after = first.back().sequence;
  for (int i = 0; i < 50 && next.empty() && after == 1; ++i) {
    next = scheduler_->WaitForEvents(id, after, 0, absl::Milliseconds(100)).value();
  }
  if (after == 1) {
    ASSERT_EQ(next.size(), 1u);
    first.push_back(next[0]);
  }
  EXPECT_EQ(first[1].type, EventType::kStateChanged);
  EXPECT_EQ(first[1].state, JobState::kRunning);
  EXPECT_EQ(first[1].message, "running on cpu");
  EXPECT_EQ(store_->GetJob(id).value().last_step, 0);  // really before any step
  runner_.Allow(id);
  EXPECT_TRUE(WaitForState(id, JobState::kSucceeded));
}

// Store writes that fail (here: another connection holds SQLite's write lock) are retried, never
// only logged: the finished job's end, its checkpoint records and a running job's progress all
// reach the store once it takes writes again, and a queued job whose start cannot be recorded
// stays queued and starts later.
TEST_F(SchedulerTest, FailedStoreWritesAreRetriedAndNothingIsLost) {
  Start({"cpu"}, 1);
  JobSpec spec = Spec(4);
  spec.train.checkpoint_every = 2;
  std::string a = Submit(spec);
  std::string b = Submit(Spec(2));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(a); }));
  LockDatabase();
  runner_.Allow(a);
  // a ends, but the store cannot record it: it is not lost, and Cancel says what happened.
  ASSERT_TRUE(WaitUntil([&] { return scheduler_->Stats()->unrecorded_jobs == 1; }));
  absl::Status cancel = scheduler_->Cancel(a).status();
  EXPECT_EQ(cancel.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(cancel.message().find("has already ended (SUCCEEDED) but the store has not recorded"),
            std::string::npos)
      << cancel;
  // b's start cannot be recorded either: it stays queued and does not run.
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_FALSE(runner_.IsRunning(b));
  EXPECT_EQ(StateOf(b), JobState::kQueued);
  runner_.Allow(b);
  UnlockDatabase();

  ASSERT_TRUE(WaitForState(a, JobState::kSucceeded));
  ASSERT_TRUE(WaitForState(b, JobState::kSucceeded));
  std::vector<JobEvent> events = store_->EventsAfter(a, 0, 0).value();
  std::vector<int64_t> steps;
  int terminal = 0;
  for (const JobEvent& e : events) {
    if (e.type == EventType::kMetrics) steps.push_back(e.step);
    if (e.type == EventType::kStateChanged && store::IsTerminal(e.state)) ++terminal;
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4}));  // every step once, in order
  EXPECT_EQ(terminal, 1);
  EXPECT_EQ(events.back().state, JobState::kSucceeded);  // nothing after the terminal state
  std::vector<store::CheckpointRecord> checkpoints = store_->ListCheckpoints(a).value();
  ASSERT_EQ(checkpoints.size(), 2u);
  EXPECT_EQ(checkpoints[0].step, 2);
  EXPECT_EQ(checkpoints[1].step, 4);
  // The end is recorded before the job leaves the unrecorded list (RetryUnrecorded), so the
  // store may say SUCCEEDED a moment before the count drops.
  EXPECT_TRUE(WaitUntil([&] { return scheduler_->Stats()->unrecorded_jobs == 0; }));
}

// A queued job whose stored row cannot be read is not dropped from the queue while the store
// says QUEUED forever: it fails with the reason, and the next job runs.
TEST_F(SchedulerTest, UnreadableQueuedJobFailsWithTheReason) {
  Start({"cpu"}, 1);
  std::string blocker = Submit(Spec());
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(blocker); }));
  std::string broken = Submit(Spec());
  std::string next = Submit(Spec());
  CorruptRow(broken, "spec_json = 'not json'");
  runner_.Allow(blocker);
  runner_.Allow(next);
  ASSERT_TRUE(WaitForState(next, JobState::kSucceeded));
  EXPECT_EQ(RawState(broken).substr(0, 46), "FAILED: the job's stored record cannot be read");
  std::vector<JobEvent> events = store_->EventsAfter(broken, 0, 0).value();
  ASSERT_EQ(events.size(), 3u);  // queued, the error, failed
  EXPECT_EQ(events[1].type, EventType::kError);
  EXPECT_NE(events[1].message.find("stored spec is unreadable"), std::string::npos)
      << events[1].message;
  EXPECT_EQ(events[2].state, JobState::kFailed);
  EXPECT_EQ(runner_.starts(), (std::vector<std::string>{blocker, next}));
}

TEST_F(SchedulerTest, ShutdownLeavesRunningJobQueuedAndTheNextStartResumesIt) {
  Start({"cpu"}, 1);
  std::string id = Submit(Spec(4));
  runner_.Allow(id, 1);
  ASSERT_TRUE(WaitUntil([&] { return store_->GetJob(id).value().last_step == 1; }));
  std::string waiting = Submit(Spec());
  scheduler_->Shutdown();
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(StateOf(waiting), JobState::kQueued);
  EXPECT_EQ(scheduler_->Submit(Spec(), "", "").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(scheduler_->WaitForEvents(id, 0, 1, absl::Seconds(1)).status().code(),
            absl::StatusCode::kUnavailable);
  std::vector<JobEvent> events = store_->EventsAfter(id, 0, 0).value();
  EXPECT_EQ(events.back().state, JobState::kQueued);
  EXPECT_NE(events.back().message.find("shutting down"), std::string::npos);

  scheduler_.reset();
  runner_.Allow(id);
  runner_.Allow(waiting);
  Start({"cpu"}, 1);
  ASSERT_TRUE(WaitForState(waiting, JobState::kSucceeded));
  EXPECT_EQ(StateOf(id), JobState::kSucceeded);
  EXPECT_EQ(runner_.starts(), (std::vector<std::string>{id, id, waiting}));
}

TEST_F(SchedulerTest, StartAfterCrashRequeuesJobsLeftRunning) {
  std::string id;
  {
    Job job;
    job.spec = Spec();
    job.state = JobState::kRunning;  // as a killed server left it
    job.devices = {"cpu"};
    job.output_dir = dir_ + "/jobs/x";
    id = store_->InsertJob(job).value().id;
  }
  runner_.Allow(id);
  Start({"cpu"}, 1);
  ASSERT_TRUE(WaitForState(id, JobState::kSucceeded));
  std::vector<JobEvent> events = store_->EventsAfter(id, 0, 0).value();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0].state, JobState::kQueued);
  EXPECT_EQ(events[0].message, "server restarted; the job will resume from its last checkpoint");
  EXPECT_EQ(events[1].state, JobState::kRunning);
}

TEST_F(SchedulerTest, StatsCountStatesQueueAndRunningJobs) {
  Start({"cpu"}, 1);
  std::string running = Submit(Spec());
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(running); }));
  runner_.Allow(running, 1);
  ASSERT_TRUE(WaitUntil([&] { return store_->GetJob(running).value().last_step == 1; }));
  std::string queued = Submit(Spec());
  SchedulerStats stats = scheduler_->Stats().value();
  EXPECT_EQ(stats.jobs_by_state[JobState::kRunning], 1);
  EXPECT_EQ(stats.jobs_by_state[JobState::kQueued], 1);
  EXPECT_EQ(stats.queue_length, 1);
  ASSERT_EQ(stats.running.size(), 1u);
  EXPECT_EQ(stats.running[0].job_id, running);
  EXPECT_EQ(stats.running[0].last_step, 1);
  ASSERT_TRUE(stats.running[0].latest_step.has_value());
  EXPECT_DOUBLE_EQ(stats.running[0].latest_step->train_loss, 1.0);
  EXPECT_EQ(stats.devices[0].busy, 1);
  runner_.Allow(running);
  runner_.Allow(queued);
  EXPECT_TRUE(WaitForState(queued, JobState::kSucceeded));
}

TEST_F(SchedulerTest, CheckpointRecordsFollowTheEnginesPruning) {
  Start({"cpu"}, 1);
  JobSpec spec = Spec(6);
  spec.train.checkpoint_every = 1;
  std::string id = Submit(spec);
  runner_.Allow(id);
  ASSERT_TRUE(WaitForState(id, JobState::kSucceeded));
  std::vector<store::CheckpointRecord> checkpoints = store_->ListCheckpoints(id).value();
  ASSERT_EQ(checkpoints.size(), 2u);
  EXPECT_EQ(checkpoints[0].step, 5);
  EXPECT_EQ(checkpoints[0].sha256, "sha5");
  EXPECT_EQ(checkpoints[1].step, 6);
  EXPECT_EQ(checkpoints[1].sha256, "cafe");  // the final checkpoint replaces step 6's record
}

TEST_F(SchedulerTest, CpuJobTakesAGpuSlotOnAGpuOnlyMachine) {
  Start({"cuda:0", "cuda:1"}, 1);
  std::string a = Submit(Spec());
  std::string b = Submit(Spec());
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(a) && runner_.IsRunning(b); }));
  EXPECT_EQ(runner_.devices(a), std::vector<std::string>{"cuda:0"});
  EXPECT_EQ(runner_.devices(b), std::vector<std::string>{"cuda:1"});
  runner_.Allow(a);
  runner_.Allow(b);
  EXPECT_TRUE(WaitForState(b, JobState::kSucceeded));
}

TEST_F(SchedulerTest, QueuedJobNeedingMoreGpusThanTheNewInventoryFailsAtStart) {
  Job job;
  job.spec = Spec(3, 0, /*gpus=*/2);
  std::string id = store_->InsertJob(job).value().id;
  Start({"cuda:0"}, 1);
  Job failed = store_->GetJob(id).value();
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.error, "gpus: the job needs 2 GPU(s) but this server now has 1");
}

// A queued CPU job of 3 ranks on a server restarted with 2 CPU slots fails; one stored before
// ranks existed (0) runs on one slot.
TEST_F(SchedulerTest, QueuedCpuJobNeedingMoreSlotsThanTheNewInventoryFailsAtStart) {
  Job three;
  three.spec = Spec();
  three.spec.ranks = 3;
  const std::string too_many = store_->InsertJob(three).value().id;
  Job old;
  old.spec = Spec();
  old.spec.ranks = 0;
  const std::string unset = store_->InsertJob(old).value().id;
  Start({"cpu"}, 2);
  Job failed = store_->GetJob(too_many).value();
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.error, "ranks: the job needs 3 CPU slots but this server now has 2");
  runner_.Allow(unset);
  ASSERT_TRUE(WaitForState(unset, JobState::kSucceeded));
  EXPECT_EQ(runner_.devices(unset), std::vector<std::string>{"cpu"});
}

// A retry of a submit whose job was stored before JobSpec.ranks existed (ranks 0) returns that
// job: the stored spec counts as the ranks it ran with, not as a different spec.
TEST_F(SchedulerTest, ARetriedSubmitOfAJobStoredWithoutRanksReturnsIt) {
  Job old;
  old.spec = Spec();
  old.spec.gpus = 0;
  ApplyJobSpecDefaults(&old.spec);  // as Submit stored it
  old.spec.ranks = 0;
  old.request_id = "before-ranks";
  const std::string id = store_->InsertJob(old).value().id;
  Start({"cpu"}, 1);
  JobSpec retried = Spec();
  retried.gpus = 0;
  absl::StatusOr<Job> again = scheduler_->Submit(retried, "before-ranks", "");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, id);
  runner_.Allow(id);
  EXPECT_TRUE(WaitForState(id, JobState::kSucceeded));
}

}  // namespace
}  // namespace attune::scheduler
