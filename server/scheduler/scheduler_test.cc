#include "server/scheduler/scheduler.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "gtest/gtest.h"

namespace attune::scheduler {
namespace {

using store::EventType;
using store::Job;
using store::JobEvent;
using store::JobState;

constexpr int64_t kUnlimited = 1 << 30;

// A JobRunner whose jobs take `max_steps` steps, each only when the test allows it
// (Allow / AllowAll), checking StopRequested before every step. It records which jobs ran, on
// which devices, and how many ran at once. Job names choose failures: "fail" returns an error,
// "throw" throws.
class FakeRunner : public JobRunner {
 public:
  absl::StatusOr<engine::SpecCheck> Check(const TrainSpec& spec) override {
    if (spec.model_dir == "/missing") {
      return absl::InvalidArgumentError("model: /missing: no such directory");
    }
    engine::SpecCheck check;
    check.total_parameters = 1000;
    check.trainable_parameters = 10;
    check.base_model_bytes = 4000;
    return check;
  }

  absl::StatusOr<engine::TrainResult> Run(const Job& job, const std::vector<std::string>& devices,
                                          const std::string& output_dir,
                                          engine::TrainingObserver* observer) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_.insert(job.id);
      max_running_ = std::max(max_running_, static_cast<int>(running_.size()));
      starts_.push_back(job.id);
      devices_[job.id] = devices;
      cv_.notify_all();
    }
    struct Done {
      FakeRunner* runner;
      std::string id;
      ~Done() {
        std::lock_guard<std::mutex> lock(runner->mu_);
        runner->running_.erase(id);
        runner->cv_.notify_all();
      }
    } done{this, job.id};
    if (job.spec.name == "fail") return absl::InternalError("CUDA out of memory on cuda:0");
    if (job.spec.name == "throw") throw std::runtime_error("boom");

    engine::SpecCheck setup;
    setup.total_parameters = 1001;
    setup.trainable_parameters = 11;
    observer->OnStart(setup, 0);
    const int64_t total = job.spec.train.max_steps;
    engine::TrainResult result;
    for (int64_t step = 1; step <= total; ++step) {
      std::unique_lock<std::mutex> lock(mu_);
      while (permits_[job.id] == 0 && !observer->StopRequested()) {
        cv_.wait_for(lock, std::chrono::milliseconds(5));
      }
      if (observer->StopRequested()) {
        result.outcome = engine::Outcome::kStopped;
        result.steps = step - 1;
        return result;
      }
      if (permits_[job.id] < kUnlimited) --permits_[job.id];
      lock.unlock();
      engine::StepMetrics metrics;
      metrics.step = step;
      metrics.total_steps = total;
      metrics.train_loss = 1.0 / step;
      metrics.learning_rates = {{"v.lora_A", 4e-4}};
      observer->OnStep(metrics);
      const int64_t every = job.spec.train.checkpoint_every;
      if (every > 0 && step % every == 0) {
        // Keeps the last two, as the engine's pruning would.
        engine::CheckpointInfo periodic{step, output_dir + "/step-" + std::to_string(step), 100,
                                        "sha" + std::to_string(step)};
        if (step > 2 * every) periodic.deleted_steps = {step - 2 * every};
        observer->OnCheckpoint(periodic);
      }
    }
    engine::EvalMetrics eval;
    eval.step = total;
    eval.loss = 0.1;
    eval.accuracy = 0.95;
    observer->OnEval(eval);
    engine::CheckpointInfo checkpoint{total, output_dir + "/checkpoint", 1234, "cafe"};
    observer->OnCheckpoint(checkpoint);
    result.outcome = engine::Outcome::kCompleted;
    result.steps = total;
    result.final_checkpoint = checkpoint;
    return result;
  }

  // Lets job `id` take `steps` more steps.
  void Allow(const std::string& id, int64_t steps = kUnlimited) {
    std::lock_guard<std::mutex> lock(mu_);
    permits_[id] = std::min(kUnlimited, permits_[id] + steps);
    cv_.notify_all();
  }

  bool IsRunning(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return running_.count(id) > 0;
  }
  int max_running() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_running_;
  }
  std::vector<std::string> starts() {
    std::lock_guard<std::mutex> lock(mu_);
    return starts_;
  }
  std::vector<std::string> devices(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return devices_[id];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int64_t> permits_;
  std::set<std::string> running_;
  int max_running_ = 0;
  std::vector<std::string> starts_;
  std::map<std::string, std::vector<std::string>> devices_;
};

// Polls `done` for up to 10 s.
bool WaitUntil(const std::function<bool()>& done) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/scheduler_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    store_ = store::Store::Open(dir_ + "/attune.db").value();
  }
  void TearDown() override {
    scheduler_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Start(std::vector<std::string> devices = {"cpu"}, int slots = 1, int max_queued = 100) {
    SchedulerOptions options;
    options.devices = std::move(devices);
    options.slots_per_device = slots;
    options.artifacts_dir = dir_;
    options.max_queued = max_queued;
    options.event_flush_interval = absl::Milliseconds(10);
    absl::StatusOr<std::unique_ptr<Scheduler>> scheduler =
        Scheduler::Create(options, store_.get(), &runner_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = *std::move(scheduler);
  }

  static JobSpec Spec(int64_t steps = 3, int priority = 0, int gpus = 0,
                      const std::string& name = "") {
    JobSpec spec;
    spec.train.model_dir = "/models/tiny";
    spec.train.task = Task::kSequenceClassification;
    spec.train.train_path = "/data/train.jsonl";
    spec.train.targets = {"q", "v"};
    spec.train.lr_ratios = {{"v", 4.0}};
    spec.train.max_steps = steps;
    spec.priority = priority;
    spec.gpus = gpus;
    spec.name = name;
    return spec;
  }

  std::string Submit(const JobSpec& spec) {
    absl::StatusOr<Job> job = scheduler_->Submit(spec, "", "");
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? job->id : "";
  }

  JobState StateOf(const std::string& id) { return store_->GetJob(id).value().state; }

  bool WaitForState(const std::string& id, JobState state) {
    return WaitUntil([&] { return StateOf(id) == state; });
  }

  std::string dir_;
  FakeRunner runner_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Scheduler> scheduler_;
};

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
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
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

TEST_F(SchedulerTest, GpuJobStartsOnlyWhenAllItsGpusAreFree) {
  Start({"cuda:0", "cuda:1"}, 1);
  std::string one = Submit(Spec(3, 0, 1));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(one); }));
  EXPECT_EQ(runner_.devices(one), std::vector<std::string>{"cuda:0"});
  std::string two = Submit(Spec(3, 0, 2));
  std::string backfill = Submit(Spec(3, 0, 1));  // fits on cuda:1 now
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(backfill); }));
  EXPECT_EQ(runner_.devices(backfill), std::vector<std::string>{"cuda:1"});
  runner_.Allow(one);
  ASSERT_TRUE(WaitForState(one, JobState::kSucceeded));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // cuda:0 is free but cuda:1 is not: no partial grab.
  EXPECT_EQ(StateOf(two), JobState::kQueued);
  EXPECT_FALSE(runner_.IsRunning(two));
  runner_.Allow(backfill);
  runner_.Allow(two);
  ASSERT_TRUE(WaitForState(two, JobState::kSucceeded));
  EXPECT_EQ(runner_.devices(two), (std::vector<std::string>{"cuda:0", "cuda:1"}));
  EXPECT_EQ(store_->GetJob(two).value().devices, (std::vector<std::string>{"cuda:0", "cuda:1"}));
  EXPECT_EQ(scheduler_->Submit(Spec(3, 0, 3), "", "").status().code(),
            absl::StatusCode::kInvalidArgument);
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
  std::string fails = Submit(Spec(3, 0, 0, "fail"));
  std::string throws = Submit(Spec(3, 0, 0, "throw"));
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

TEST_F(SchedulerTest, EventsAreGaplessAndWatchersSeeEveryOne) {
  Start({"cpu"}, 1);
  std::string id = Submit(Spec(5));
  // Nothing new yet after the first events: the wait times out empty.
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(id); }));
  int64_t seen = store_->LastEventSequence(id).value();
  EXPECT_TRUE(scheduler_->WaitForEvents(id, seen, 100, absl::Milliseconds(30)).value().empty());

  std::vector<JobEvent> all;
  std::thread watcher([&] {
    int64_t after = 0;
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

}  // namespace
}  // namespace attune::scheduler
