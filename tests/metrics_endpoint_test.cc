// /metrics of a real attuned with a running example job: promtool accepts the exposition, the
// job's loss and learning rates per group are there (v's exactly 4 times q's, as the spec's
// lr_ratios say), the checkpoint byte counter is exactly the sum of the job's checkpoint events
// while and after it runs, gRPC calls are counted, and the JSON endpoints the dashboard uses
// describe the job. Also checks deploy/prometheus.yml with promtool.
#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/metrics_running_job.h"

namespace attune::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kPromtool[] = "/usr/bin/promtool";
constexpr int64_t kTotalSteps = 100000;  // --max-steps of the job RunningJobTest submits

// The value of the sample `series` (name and labels, e.g. `attune_queue_length` or
// `attune_jobs{state="running"}`) in a scrape; nullopt when it is absent.
std::optional<double> Sample(const std::string& scrape, const std::string& series) {
  const std::string prefix = series + " ";
  for (size_t at = 0; at < scrape.size();) {
    size_t end = scrape.find('\n', at);
    if (end == std::string::npos) end = scrape.size();
    const std::string line = scrape.substr(at, end - at);
    double value = 0;
    if (absl::StartsWith(line, prefix) && absl::SimpleAtod(line.substr(prefix.size()), &value)) {
      return value;
    }
    at = end + 1;
  }
  return std::nullopt;
}

// Every event of the job from /api/jobs/<id>/events, paging with `after` until nothing is new.
std::vector<nlohmann::json> AllEvents(const std::string& http, const std::string& job_id) {
  std::vector<nlohmann::json> out;
  int64_t after = 0;
  while (true) {
    int status = 0;
    const std::string body =
        HttpGet(http, absl::StrCat("/api/jobs/", job_id, "/events?after=", after), &status);
    EXPECT_EQ(status, 200) << body;
    if (status != 200) return out;
    const nlohmann::json page = nlohmann::json::parse(body);
    if (page["events"].empty()) return out;
    for (const auto& event : page["events"]) out.push_back(event);
    after = page["nextAfter"].get<int64_t>();
  }
}

// The sums of the adapter bytes of the first 0, 1, 2, ... checkpoint events, ascending; the
// counter must always be one of them (it counts checkpoint events in order).
std::vector<int64_t> CheckpointPrefixSums(const std::vector<nlohmann::json>& events) {
  std::vector<int64_t> sums = {0};
  for (const auto& event : events) {
    if (event["type"] == "checkpoint") {
      sums.push_back(sums.back() + event["adapterBytes"].get<int64_t>());
    }
  }
  return sums;
}

// attune_checkpoint_written_bytes_total of one scrape; -1 when absent.
int64_t CheckpointCounter(const std::string& http) {
  return static_cast<int64_t>(
      Sample(HttpGet(http, "/metrics"), "attune_checkpoint_written_bytes_total").value_or(-1));
}

// Scrapes until the counter reaches at least `at_least` (or `timeout_s` pass), checking on every
// scrape that it is exactly the bytes of a prefix of the job's checkpoint events. Returns the
// last value read.
int64_t WaitForCounter(const std::string& http, const std::string& job_id, int64_t at_least,
                       int timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int64_t counter = -1;
  do {
    counter = CheckpointCounter(http);
    const std::vector<int64_t> sums = CheckpointPrefixSums(AllEvents(http, job_id));
    if (std::find(sums.begin(), sums.end(), counter) == sums.end()) {
      ADD_FAILURE() << "counter " << counter
                    << " is not the bytes of the first checkpoints; latest sum " << sums.back();
      return counter;
    }
    if (counter >= at_least) return counter;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  } while (std::chrono::steady_clock::now() < deadline);
  return counter;
}

TEST_F(RunningJobTest, MetricsPassPromtoolAndShowTheRunningJob) {
  const std::string http = server_->http_address();
  const std::string text = HttpGet(http, "/metrics");
  std::string out;
  EXPECT_EQ(RunProgram({kPromtool, "check", "metrics"}, text, &out), 0) << out << "\n" << text;
  EXPECT_EQ(out, "") << "promtool lint findings";

  EXPECT_THAT(text, HasSubstr("attune_jobs{state=\"running\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("attune_queue_length 0\n"));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("attune_job_train_loss{job_id=\"", job_id_, "\"} ")));
  EXPECT_THAT(text,
              HasSubstr(absl::StrCat("attune_job_total_steps{job_id=\"", job_id_, "\"} 100000\n")));
  // One learning-rate series per parameter group, all from the same (latest) step: v's groups
  // carry exactly 4 times q's rate (--lr-ratio v=4).
  for (const char* part : {"lora_A", "lora_B"}) {
    const std::string labels = absl::StrCat("\",job_id=\"", job_id_, "\"}");
    const std::optional<double> q =
        Sample(text, absl::StrCat("attune_job_learning_rate{group=\"q.", part, labels));
    const std::optional<double> v =
        Sample(text, absl::StrCat("attune_job_learning_rate{group=\"v.", part, labels));
    ASSERT_TRUE(q.has_value() && v.has_value()) << part << "\n" << text;
    EXPECT_GT(*q, 0) << part;
    EXPECT_DOUBLE_EQ(*v, 4 * *q) << part;
  }
  EXPECT_THAT(text, HasSubstr(absl::StrCat("attune_job_tokens_per_second{job_id=\"", job_id_)));
  EXPECT_THAT(text, HasSubstr("attune_device_memory_used_bytes{device=\"cpu\"} "));
  // The submit went through gRPC CreateJob and was counted by the interceptor.
  EXPECT_THAT(text, HasSubstr("attune_grpc_server_handled_total{code=\"OK\",method=\"/attune.v1."));
  EXPECT_THAT(text, HasSubstr("/CreateJob\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("attune_grpc_server_handling_seconds_bucket{"));
}

TEST_F(RunningJobTest, JsonEndpointsDescribeTheJob) {
  const std::string http = server_->http_address();
  int status = 0;
  auto list = nlohmann::json::parse(HttpGet(http, "/api/jobs", &status));
  EXPECT_EQ(status, 200);
  ASSERT_EQ(list["jobs"].size(), 1u);
  EXPECT_EQ(list["jobs"][0]["id"], job_id_);
  EXPECT_EQ(list["jobs"][0]["state"], "RUNNING");

  auto job = nlohmann::json::parse(HttpGet(http, "/api/jobs/" + job_id_, &status));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(job["name"], "metrics-test");
  EXPECT_EQ(job["spec"]["targets"], nlohmann::json({"q", "v"}));
  EXPECT_EQ(job["spec"]["lrRatios"]["v"], 4.0);
  EXPECT_GT(job["baseModelBytes"].get<int64_t>(), 0);

  auto events = nlohmann::json::parse(HttpGet(http, "/api/jobs/" + job_id_ + "/events", &status));
  EXPECT_EQ(status, 200);
  ASSERT_FALSE(events["events"].empty());
  int64_t previous = 0;
  int steps = 0;
  for (const auto& event : events["events"]) {
    EXPECT_EQ(event["sequence"].get<int64_t>(), previous + 1);  // no gap, no repeat
    previous = event["sequence"].get<int64_t>();
    if (event["type"] == "step") {
      ++steps;
      EXPECT_TRUE(event["trainLoss"].is_number());
      ASSERT_EQ(event["totalSteps"], kTotalSteps) << event;  // the real total, never 0
      const nlohmann::json& rates = event["learningRates"];
      ASSERT_TRUE(rates.contains("q.lora_A") && rates.contains("v.lora_A")) << event;
      ASSERT_DOUBLE_EQ(rates["v.lora_A"].get<double>(), 4 * rates["q.lora_A"].get<double>())
          << event;
    }
  }
  EXPECT_GT(steps, 0);
  // The job runs on, so events after the last one read arrive, starting right after it.
  nlohmann::json later;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    later = nlohmann::json::parse(
        HttpGet(http, absl::StrCat("/api/jobs/", job_id_, "/events?after=", previous)));
    if (!later["events"].empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_FALSE(later["events"].empty()) << "no event after " << previous << " within 30 s";
  EXPECT_EQ(later["events"][0]["sequence"], previous + 1);

  HttpGet(http, "/api/jobs/no-such-job", &status);
  EXPECT_EQ(status, 404);
}

// attune_checkpoint_written_bytes_total is exactly the adapter bytes of the job's checkpoint
// events (read back through the JSON events endpoint): while the job runs it grows with every
// checkpoint, and after the job ends it equals the sum of all of them.
TEST_F(RunningJobTest, CheckpointCounterIsTheSumOfTheJobsCheckpointEvents) {
  const std::string http = server_->http_address();
  // Checkpoints every 20 steps: wait for two, then for the counter to count them.
  int64_t written = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::vector<int64_t> sums = CheckpointPrefixSums(AllEvents(http, job_id_));
    if (sums.size() > 2) {
      written = sums.back();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  ASSERT_GT(written, 0) << "fewer than two checkpoint events within 120 s";
  const int64_t counted = WaitForCounter(http, job_id_, written, 30);
  ASSERT_GE(counted, written) << "the counter did not count checkpoints written while the job runs";
  // ... and counts the next one too, while the job still runs.
  EXPECT_GT(WaitForCounter(http, job_id_, counted + 1, 60), counted);

  CliResult cancel = RunCli(server_->address(), {"cancel", job_id_});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  std::string state;
  const auto stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (state != "CANCELLED" && std::chrono::steady_clock::now() < stop_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    state = nlohmann::json::parse(HttpGet(http, "/api/jobs/" + job_id_))["state"];
  }
  ASSERT_EQ(state, "CANCELLED");
  const int64_t total = CheckpointPrefixSums(AllEvents(http, job_id_)).back();
  EXPECT_EQ(CheckpointCounter(http), total);
  EXPECT_EQ(CheckpointCounter(http), total);  // counted once, not again on the next scrape
}

TEST(PrometheusConfigTest, DeployConfigPassesPromtool) {
  std::string out;
  EXPECT_EQ(RunProgram({kPromtool, "check", "config", ATTUNE_SOURCE_DIR "/deploy/prometheus.yml"},
                       "", &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("SUCCESS"));
}

}  // namespace
}  // namespace attune::testing
