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

#include <sqlite3.h>

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
    checkpoint.eval_metric = RankingMetric(eval);  // as the engine reports it
    checkpoint.best = true;
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
    store::StoreOptions store_options;
    store_options.busy_timeout = absl::Milliseconds(20);  // a locked database fails fast
    store_ = store::Store::Open(dir_ + "/attune.db", store_options).value();
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
    options.retry_interval = absl::Milliseconds(20);
    options.clock = &clock_;
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

  // Waits until the dispatcher has considered every change so far (see
  // SchedulerStats::dispatcher_idle): a job still queued then really could not start.
  bool WaitForDispatcherIdle() {
    return WaitUntil([&] { return scheduler_->Stats().value().dispatcher_idle; });
  }

  // Holds SQLite's write lock from a second connection, as another process would, so that every
  // write of the scheduler's store fails (busy) until Unlock.
  void LockDatabase() {
    ASSERT_EQ(sqlite3_open((dir_ + "/attune.db").c_str(), &locker_), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(locker_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  void UnlockDatabase() {
    ASSERT_EQ(sqlite3_exec(locker_, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(locker_);
    locker_ = nullptr;
  }
  // Overwrites a column of a job's row behind the store's back.
  void CorruptRow(const std::string& id, const std::string& assignment) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ + "/attune.db").c_str(), &db), SQLITE_OK);
    const std::string sql = "UPDATE jobs SET " + assignment + " WHERE id = '" + id + "'";
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  // The state column read directly (for a job whose row the store can no longer read).
  std::string RawState(const std::string& id) {
    sqlite3* db = nullptr;
    sqlite3_open((dir_ + "/attune.db").c_str(), &db);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, "SELECT state, error FROM jobs WHERE id = ?", -1, &stmt, nullptr);
    sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    std::string state;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      state = std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))) + ": " +
              reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return state;
  }

  bool WaitForState(const std::string& id, JobState state) {
    return WaitUntil([&] { return StateOf(id) == state; });
  }

  std::string dir_;
  FakeClock clock_{1'700'000'000'000'000};
  sqlite3* locker_ = nullptr;
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

// A job asking for N GPUs would reserve N devices and train on one; until multi-GPU training
// exists, such a job is refused.
TEST_F(SchedulerTest, MultiGpuJobsAreRejectedUntilSupported) {
  Start({"cuda:0", "cuda:1"}, 1);
  absl::Status status = scheduler_->Submit(Spec(3, 0, 2), "", "").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "gpus: 2 requested, but training on several GPUs at once is not supported yet; a job "
            "trains on one device (gpus 1, or 0 for a CPU slot)");
  EXPECT_TRUE(scheduler_->List({}).value().jobs.empty());
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
  EXPECT_EQ(scheduler_->Stats()->unrecorded_jobs, 0);
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

}  // namespace
}  // namespace attune::scheduler
