// The scheduler tests' shared parts: a JobRunner whose steps the test controls, and a fixture
// with a real SQLite store in a temporary directory, a fake clock, bounded waits, and ways to make
// the store fail as another process would (a held write lock, a corrupted row).
#ifndef ATTUNE_SERVER_SCHEDULER_SCHEDULER_TEST_FIXTURE_H_
#define ATTUNE_SERVER_SCHEDULER_SCHEDULER_TEST_FIXTURE_H_

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <stdexcept>
#include <thread>

#include "gtest/gtest.h"
#include "server/scheduler/scheduler.h"

namespace attune::scheduler {
namespace testing_internal {

using store::EventType;
using store::Job;
using store::JobEvent;
using store::JobState;

inline constexpr int64_t kUnlimited = 1 << 30;

// A JobRunner whose jobs take `max_steps` steps, each only when the test allows it
// (Allow / AllowAll), checking StopRequested before every step. It records which jobs ran, on
// which devices, and how many ran at once. Job names choose failures: "fail" returns an error
// of the machine (INTERNAL), "bad-input" one of the input (INVALID_ARGUMENT), "throw" throws,
// "throw-once" throws on its first start only; "slow-stop" is inside a step when asked to stop,
// and stops only once the test allows it one more step.
class FakeRunner : public JobRunner {
 public:
  absl::StatusOr<engine::SpecCheck> Check(const TrainSpec& spec) override {
    if (spec.model_dir == "/missing") {
      return absl::InvalidArgumentError("model: /missing: no such directory");
    }
    if (spec.model_dir == "/huge") throw std::bad_alloc();
    if (spec.model_dir == "/bug") throw std::logic_error("vector::_M_range_check");
    engine::SpecCheck check;
    check.total_parameters = 1000;
    check.trainable_parameters = 10;
    check.base_model_bytes = 4000;
    return check;
  }

  absl::StatusOr<engine::TrainResult> Run(const Job& job, const std::vector<std::string>& devices,
                                          const std::string& output_dir,
                                          engine::TrainingObserver* observer) override {
    bool first_start = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_.insert(job.id);
      max_running_ = std::max(max_running_, static_cast<int>(running_.size()));
      starts_.push_back(job.id);
      first_start = std::count(starts_.begin(), starts_.end(), job.id) == 1;
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
    if (job.spec.name == "bad-input") return absl::InvalidArgumentError("train: line 3: not JSON");
    if (job.spec.name == "throw") throw std::runtime_error("boom");
    if (job.spec.name == "throw-once" && first_start) throw std::runtime_error("boom");

    engine::SpecCheck setup;
    setup.total_parameters = 1001;
    setup.trainable_parameters = 11;
    observer->OnStart(setup, 0);
    const int64_t total = job.spec.train.max_steps;
    engine::TrainResult result;
    for (int64_t step = 1; step <= total; ++step) {
      std::unique_lock<std::mutex> lock(mu_);
      const bool slow_stop = job.spec.name == "slow-stop";
      while (permits_[job.id] == 0 && (slow_stop || !observer->StopRequested())) {
        cv_.wait_for(lock, std::chrono::milliseconds(5));
      }
      if (observer->StopRequested()) {
        if (slow_stop && permits_[job.id] < kUnlimited) --permits_[job.id];
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
inline bool WaitUntil(const std::function<bool()>& done) {
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
    options.tenant_limits = tenant_limits_;
    options.preemption = preemption_;
    options.preemption_grace = preemption_grace_;
    options.crash_backoff = crash_backoff_;
    options.shares_device = shares_device_;
    options.share_base = share_base_;
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

  // The messages of job `id`'s warning events.
  std::vector<std::string> Warnings(const std::string& id) {
    std::vector<std::string> out;
    const std::vector<store::JobEvent> events = store_->EventsAfter(id, 0, 1000).value();
    for (const store::JobEvent& event : events) {
      if (event.type == store::EventType::kWarning) out.push_back(event.message);
    }
    return out;
  }

  bool WaitForState(const std::string& id, JobState state) {
    return WaitUntil([&] { return StateOf(id) == state; });
  }

  std::string dir_;
  FakeClock clock_{1'700'000'000'000'000};
  sqlite3* locker_ = nullptr;
  FakeRunner runner_;
  std::function<TenantLimits(const std::string&)> tenant_limits_;  // set before Start
  bool preemption_ = false;                                        // set before Start
  absl::Duration preemption_grace_ = absl::Minutes(10);            // set before Start
  absl::Duration crash_backoff_ = absl::Milliseconds(20);          // set before Start
  std::function<bool(const std::string&)> shares_device_;          // set before Start
  std::function<std::string(const TrainSpec&, const TrainSpec&, const std::string&)>
      share_base_;  // set before Start
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace testing_internal
}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_SCHEDULER_TEST_FIXTURE_H_
