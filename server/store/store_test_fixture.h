// The store tests' fixture: a database path in a fresh temporary directory, and builders of a
// job and an event.
#ifndef ATTUNE_SERVER_STORE_STORE_TEST_FIXTURE_H_
#define ATTUNE_SERVER_STORE_STORE_TEST_FIXTURE_H_

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/store/store.h"

namespace attune::store {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/store_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/attune.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Store> OpenStore() {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  static Job MakeJob(const std::string& request_id, int64_t created_us) {
    Job job;
    job.request_id = request_id;
    job.spec.train.model_dir = "/models/tiny";
    job.spec.train.task = Task::kSequenceClassification;
    job.spec.train.train_path = "/data/train.jsonl";
    job.spec.train.targets = {"q", "v"};
    job.spec.train.lr_ratios = {{"v", 4.0}};
    job.spec.priority = 3;
    job.created_us = created_us;
    return job;
  }

  static JobEvent MakeEvent(const std::string& job_id, EventType type, int64_t step) {
    JobEvent event;
    event.job_id = job_id;
    event.type = type;
    event.state = JobState::kRunning;
    event.step = step;
    event.time_us = 1000 + step;
    if (type == EventType::kMetrics) {
      event.step_metrics = StepMetrics{};
      event.step_metrics->train_loss = 0.5 / (step + 1);
    }
    return event;
  }

  std::string dir_;
  std::string path_;
};

}  // namespace attune::store

#endif  // ATTUNE_SERVER_STORE_STORE_TEST_FIXTURE_H_
