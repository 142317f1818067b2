// Queueing, placement, validation and cancellation.
#include "server/scheduler/scheduler.h"

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
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

TEST_F(SchedulerTest, CreateRejectsBadOptions) {
  SchedulerOptions options;
  options.artifacts_dir = dir_;
  options.devices = {"tpu:0"};
  EXPECT_EQ(Scheduler::Create(options, store_.get(), &runner_).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.devices = {"cpu"};
  options.slots_per_device = 0;
  absl::Status status = Scheduler::Create(options, store_.get(), &runner_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("slots_per_device"), std::string::npos);
}

TEST_F(SchedulerTest, SubmitValidatesAndIsIdempotentPerRequestId) {
  Start();
  JobSpec bad = Spec();
  bad.train.learning_rate = 0;
  absl::Status status = scheduler_->Submit(bad, "r0", "").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("learning_rate"), std::string::npos) << status;

  JobSpec missing = Spec();
  missing.train.model_dir = "/missing";
  status = scheduler_->Submit(missing, "r0", "").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "model: /missing: no such directory");

  status = scheduler_->Submit(Spec(3, 0, /*gpus=*/1), "r0", "").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("gpus: 1 requested but this server has 0 GPU(s)"),
            std::string::npos)
      << status;

  Job first = scheduler_->Submit(Spec(), "r1", "").value();
  EXPECT_EQ(first.state, JobState::kQueued);
  EXPECT_EQ(first.total_parameters, 1000);
  EXPECT_EQ(first.base_model_bytes, 4000);
  EXPECT_EQ(first.output_dir, dir_ + "/jobs/" + first.id);
  Job again = scheduler_->Submit(Spec(), "r1", "").value();
  EXPECT_EQ(again.id, first.id);
  EXPECT_EQ(scheduler_->List({}).value().jobs.size(), 1u);
  EXPECT_EQ(scheduler_->Get("j-none").status().code(), absl::StatusCode::kNotFound);
  runner_.Allow(first.id);
  EXPECT_TRUE(WaitForState(first.id, JobState::kSucceeded));
}

// Only a problem with the user's input is INVALID_ARGUMENT: running out of memory while reading
// the files is RESOURCE_EXHAUSTED, any other exception INTERNAL, and none queues a job.
TEST_F(SchedulerTest, CheckFailuresGetTheirOwnCodes) {
  Start();
  JobSpec huge = Spec();
  huge.train.model_dir = "/huge";
  absl::Status status = scheduler_->Submit(huge, "", "").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(),
            "checking the job's files ran out of memory; the model or data may be too large");
  JobSpec bug = Spec();
  bug.train.model_dir = "/bug";
  status = scheduler_->Submit(bug, "", "").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(status.message(), "checking the job's files failed: vector::_M_range_check");
  EXPECT_TRUE(scheduler_->List({}).value().jobs.empty());
}

TEST_F(SchedulerTest, QueueFullIsResourceExhausted) {
  Start({"cpu"}, 1, /*max_queued=*/1);
  std::string running = Submit(Spec());
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(running); }));
  std::string queued = Submit(Spec());
  absl::Status status = scheduler_->Submit(Spec(), "", "").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("max_queued 1"), std::string::npos) << status;
  runner_.Allow(running);
  runner_.Allow(queued);
  EXPECT_TRUE(WaitForState(queued, JobState::kSucceeded));
}

TEST_F(SchedulerTest, OneSlotRunsJobsOneAfterTheOther) {
  Start({"cpu"}, 1);
  std::string a = Submit(Spec());
  std::string b = Submit(Spec());
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(a); }));
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_EQ(StateOf(b), JobState::kQueued);
  EXPECT_FALSE(runner_.IsRunning(b));
  runner_.Allow(a);
  runner_.Allow(b);
  ASSERT_TRUE(WaitForState(b, JobState::kSucceeded));
  EXPECT_EQ(StateOf(a), JobState::kSucceeded);
  EXPECT_EQ(runner_.max_running(), 1);
  EXPECT_EQ(runner_.starts(), (std::vector<std::string>{a, b}));
}

TEST_F(SchedulerTest, TwoSlotsRunJobsSideBySide) {
  Start({"cpu"}, 2);
  std::string a = Submit(Spec());
  std::string b = Submit(Spec());
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(a) && runner_.IsRunning(b); }));
  EXPECT_EQ(runner_.max_running(), 2);
  EXPECT_EQ(runner_.devices(a), std::vector<std::string>{"cpu"});
  SchedulerStats stats = scheduler_->Stats().value();
  EXPECT_EQ(stats.running.size(), 2u);
  ASSERT_EQ(stats.devices.size(), 1u);
  EXPECT_EQ(stats.devices[0].slots, 2);
  EXPECT_EQ(stats.devices[0].busy, 2);
  runner_.Allow(a);
  runner_.Allow(b);
  EXPECT_TRUE(WaitForState(a, JobState::kSucceeded));
  EXPECT_TRUE(WaitForState(b, JobState::kSucceeded));
}

TEST_F(SchedulerTest, HigherPriorityStartsFirstThenSubmissionOrder) {
  Start({"cpu"}, 1);
  std::string blocker = Submit(Spec());
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(blocker); }));
  std::string low = Submit(Spec(3, 0));
  std::string high = Submit(Spec(3, 5));
  std::string mid1 = Submit(Spec(3, 1));
  std::string mid2 = Submit(Spec(3, 1));
  for (const std::string& id : {low, high, mid1, mid2}) runner_.Allow(id);
  runner_.Allow(blocker);
  ASSERT_TRUE(WaitForState(low, JobState::kSucceeded));
  EXPECT_EQ(runner_.starts(), (std::vector<std::string>{blocker, high, mid1, mid2, low}));
}

TEST_F(SchedulerTest, GpuJobsTakeOneFreeGpuEach) {
  Start({"cuda:0", "cuda:1"}, 1);
  std::string one = Submit(Spec(3, 0, 1));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(one); }));
  EXPECT_EQ(runner_.devices(one), std::vector<std::string>{"cuda:0"});
  std::string two = Submit(Spec(3, 0, 1));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(two); }));
  EXPECT_EQ(runner_.devices(two), std::vector<std::string>{"cuda:1"});
  std::string third = Submit(Spec(3, 0, 1));
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_EQ(StateOf(third), JobState::kQueued);  // both GPUs busy
  EXPECT_FALSE(runner_.IsRunning(third));
  runner_.Allow(one);
  runner_.Allow(third);
  ASSERT_TRUE(WaitForState(third, JobState::kSucceeded));
  EXPECT_EQ(runner_.devices(third), std::vector<std::string>{"cuda:0"});
  EXPECT_EQ(store_->GetJob(third).value().devices, std::vector<std::string>{"cuda:0"});
  runner_.Allow(two);
  EXPECT_TRUE(WaitForState(two, JobState::kSucceeded));
}

// A job asking for N GPUs runs N ranks (data-parallel training), one per GPU: the runner gets
// one device per rank, and ranks other than gpus is refused.
TEST_F(SchedulerTest, MultiGpuJobRunsOneRankPerGpu) {
  Start({"cuda:0", "cuda:1"}, 1);
  JobSpec three_ranks = Spec(3, 0, /*gpus=*/2);
  three_ranks.ranks = 3;
  absl::Status status = scheduler_->Submit(three_ranks, "", "").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "ranks: 3 must equal gpus (2): data-parallel training runs one process per GPU");
  status = scheduler_->Submit(Spec(3, 0, /*gpus=*/3), "", "").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "gpus: 3 requested but this server has 2 GPU(s) (devices: cuda:0,cuda:1)");
  EXPECT_TRUE(scheduler_->List({}).value().jobs.empty());

  const std::string id = Submit(Spec(3, 0, /*gpus=*/2));  // ranks not said: 2
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(id); }));
  EXPECT_EQ(runner_.devices(id), (std::vector<std::string>{"cuda:0", "cuda:1"}));
  runner_.Allow(id);
  ASSERT_TRUE(WaitForState(id, JobState::kSucceeded));
  Job job = store_->GetJob(id).value();
  EXPECT_EQ(job.spec.ranks, 2);
  EXPECT_EQ(job.devices, (std::vector<std::string>{"cuda:0", "cuda:1"}));
  std::vector<JobEvent> events = store_->EventsAfter(id, 0, 0).value();
  EXPECT_EQ(events[0].message, "queued for 2 GPUs");
  EXPECT_EQ(events[1].message, "running on cuda:0,cuda:1");
}

// On the CPU a job of N ranks takes N CPU slots, all at once: the runner gets {"cpu", "cpu"}.
TEST_F(SchedulerTest, CpuJobOfTwoRanksTakesTwoCpuSlots) {
  Start({"cpu"}, 2);
  JobSpec three = Spec();
  three.ranks = 3;
  absl::Status status = scheduler_->Submit(three, "", "").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "ranks: 3 needs 3 CPU slots but this server has 2 (attuned --slots-per-device)");

  JobSpec two = Spec();
  two.ranks = 2;
  const std::string id = Submit(two);
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(id); }));
  EXPECT_EQ(runner_.devices(id), (std::vector<std::string>{"cpu", "cpu"}));
  EXPECT_EQ(scheduler_->Stats().value().devices[0].busy, 2);
  runner_.Allow(id);
  ASSERT_TRUE(WaitForState(id, JobState::kSucceeded));
  Job job = store_->GetJob(id).value();
  EXPECT_EQ(job.spec.ranks, 2);
  EXPECT_EQ(job.devices, (std::vector<std::string>{"cpu", "cpu"}));
  std::vector<JobEvent> events = store_->EventsAfter(id, 0, 0).value();
  EXPECT_EQ(events[0].message, "queued for 2 CPU slots");
  EXPECT_EQ(events[1].message, "running on cpu,cpu");
  ASSERT_TRUE(WaitUntil([&] { return scheduler_->Stats().value().devices[0].busy == 0; }));

  const std::string one = Submit(Spec());  // ranks not said: 1
  runner_.Allow(one);
  ASSERT_TRUE(WaitForState(one, JobState::kSucceeded));
  EXPECT_EQ(store_->GetJob(one).value().spec.ranks, 1);
  EXPECT_EQ(runner_.devices(one), std::vector<std::string>{"cpu"});

  // A GPU-only server has no CPU slots for ranks.
  scheduler_.reset();
  Start({"cuda:0"}, 2);
  status = scheduler_->Submit(two, "", "").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "ranks: 2 needs 2 CPU slots but this server has 0 (attuned --slots-per-device)");
}

// With one CPU slot free a two-rank job waits (it never gets half), and starts on both slots
// once the other job ends.
TEST_F(SchedulerTest, CpuJobOfTwoRanksWaitsForBothSlots) {
  Start({"cpu"}, 2);
  const std::string one = Submit(Spec());
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(one); }));
  JobSpec two_ranks = Spec();
  two_ranks.ranks = 2;
  const std::string two = Submit(two_ranks);
  runner_.Allow(two);
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_EQ(StateOf(two), JobState::kQueued);
  EXPECT_FALSE(runner_.IsRunning(two));
  EXPECT_EQ(scheduler_->Stats().value().devices[0].busy, 1);  // no half grab
  runner_.Allow(one);
  ASSERT_TRUE(WaitForState(two, JobState::kSucceeded));
  EXPECT_EQ(runner_.devices(two), (std::vector<std::string>{"cpu", "cpu"}));
  EXPECT_EQ(runner_.starts(), (std::vector<std::string>{one, two}));
}

// gpus not given: one GPU on a server that has GPUs, a CPU slot on one that has none; the
// choice is stored and said in the events.
TEST_F(SchedulerTest, DefaultDeviceIsOneGpuWhenTheServerHasAny) {
  Start({"cpu", "cuda:0"}, 1);
  std::string id = Submit(Spec(1, 0, /*gpus=*/-1));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(id); }));
  EXPECT_EQ(runner_.devices(id), std::vector<std::string>{"cuda:0"});
  runner_.Allow(id);
  ASSERT_TRUE(WaitForState(id, JobState::kSucceeded));
  Job job = store_->GetJob(id).value();
  EXPECT_EQ(job.spec.gpus, 1);
  std::vector<JobEvent> events = store_->EventsAfter(id, 0, 0).value();
  EXPECT_EQ(events[0].message, "queued for one GPU");
  EXPECT_EQ(events[1].message, "running on cuda:0");
  EXPECT_EQ(events[1].devices, std::vector<std::string>{"cuda:0"});

  scheduler_.reset();
  Start({"cpu"}, 1);
  std::string cpu = Submit(Spec(1, 0, /*gpus=*/-1));
  runner_.Allow(cpu);
  ASSERT_TRUE(WaitForState(cpu, JobState::kSucceeded));
  EXPECT_EQ(store_->GetJob(cpu).value().spec.gpus, 0);
  EXPECT_EQ(store_->EventsAfter(cpu, 0, 0).value()[0].message, "queued for a CPU slot");
  EXPECT_EQ(runner_.devices(cpu), std::vector<std::string>{"cpu"});
}

// The seed paper's choice: LoRA on exactly q,v with no ratio given trains v at 4x q's rate.
TEST_F(SchedulerTest, ValueRatioDefaultsToFourForLoraOnQandV) {
  Start();
  auto stored_ratios = [&](const JobSpec& spec) {
    Job job = scheduler_->Submit(spec, "", "").value();
    runner_.Allow(job.id);
    return store_->GetJob(job.id).value().spec.train.lr_ratios;
  };
  JobSpec qv = Spec();
  qv.train.lr_ratios.clear();
  EXPECT_EQ(stored_ratios(qv), (std::map<std::string, double>{{"v", 4.0}}));
  JobSpec explicit_one = Spec();
  explicit_one.train.lr_ratios = {{"v", 1.0}};
  EXPECT_EQ(stored_ratios(explicit_one), (std::map<std::string, double>{{"v", 1.0}}));
  JobSpec qkv = Spec();
  qkv.train.targets = {"k", "q", "v"};
  qkv.train.lr_ratios.clear();
  EXPECT_TRUE(stored_ratios(qkv).empty());
  JobSpec full = Spec();
  full.train.method = Method::kFull;
  full.train.lr_ratios.clear();
  EXPECT_TRUE(stored_ratios(full).empty());
}

TEST_F(SchedulerTest, CancelQueuedRunningAndFinishedJobs) {
  Start({"cpu"}, 1);
  std::string running = Submit(Spec(5));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(running); }));
  std::string queued = Submit(Spec());

  Job cancelled = scheduler_->Cancel(queued).value();
  EXPECT_EQ(cancelled.state, JobState::kCancelled);
  EXPECT_EQ(StateOf(queued), JobState::kCancelled);
  EXPECT_GT(store_->GetJob(queued).value().finished_us, 0);

  runner_.Allow(running, 2);
  ASSERT_TRUE(WaitUntil([&] { return store_->GetJob(running).value().last_step == 2; }));
  EXPECT_EQ(scheduler_->Cancel(running).value().state, JobState::kRunning);
  ASSERT_TRUE(WaitForState(running, JobState::kCancelled));
  Job stopped = store_->GetJob(running).value();
  EXPECT_EQ(stopped.last_step, 2);  // stopped before taking another step
  EXPECT_FALSE(runner_.IsRunning(running));

  absl::Status again = scheduler_->Cancel(running).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.message().find("already CANCELLED"), std::string::npos) << again;
  EXPECT_EQ(scheduler_->Cancel("j-none").status().code(), absl::StatusCode::kNotFound);
  // The cancelled queued job never ran.
  EXPECT_EQ(runner_.starts(), std::vector<std::string>{running});
}

TEST_F(SchedulerTest, FailingJobsEndFailedAndTheSchedulerKeepsWorking) {
  Start({"cpu"}, 1);
  JobSpec fail_once = Spec(3, 0, 0, "fail");
  fail_once.max_retries = 0;
  std::string fails = Submit(fail_once);
  JobSpec no_retries = Spec(3, 0, 0, "throw");
  no_retries.max_retries = 0;  // retries: scheduler_retry_test
  std::string throws = Submit(no_retries);
  std::string fine = Submit(Spec());
  runner_.Allow(fine);
  ASSERT_TRUE(WaitForState(fine, JobState::kSucceeded));

  Job failed = store_->GetJob(fails).value();
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.error, "CUDA out of memory on cuda:0");
  EXPECT_GT(failed.finished_us, 0);
  std::vector<JobEvent> events = store_->EventsAfter(fails, 0, 0).value();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[events.size() - 2].type, EventType::kError);
  EXPECT_EQ(events[events.size() - 2].message, "CUDA out of memory on cuda:0");
  EXPECT_EQ(events.back().state, JobState::kFailed);

  Job crashed = store_->GetJob(throws).value();
  EXPECT_EQ(crashed.state, JobState::kFailed);
  EXPECT_EQ(crashed.error, "training crashed: boom");
}

}  // namespace
}  // namespace attune::scheduler
