// /metrics of a real attuned with a running example job: promtool accepts the exposition, the
// job's loss and learning rates per group are there, gRPC calls are counted, and the JSON
// endpoints the dashboard uses describe the job. Also checks deploy/prometheus.yml with promtool.
#include <chrono>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/metrics_running_job.h"

namespace attune::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kPromtool[] = "/usr/bin/promtool";

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
  // One learning-rate series per parameter group; v's groups carry the ratio 4.
  EXPECT_THAT(text, HasSubstr("attune_job_learning_rate{group=\"v."));
  EXPECT_THAT(text, HasSubstr("attune_job_learning_rate{group=\"q."));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("attune_job_tokens_per_second{job_id=\"", job_id_)));
  EXPECT_THAT(text, HasSubstr("attune_device_memory_used_bytes{device=\"cpu\"} "));
  EXPECT_THAT(text, HasSubstr("attune_checkpoint_written_bytes_total "));
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
      EXPECT_GE(event["learningRates"].size(), 2u);  // at least q and v groups
    }
  }
  EXPECT_GT(steps, 0);
  auto later = nlohmann::json::parse(
      HttpGet(http, absl::StrCat("/api/jobs/", job_id_, "/events?after=", previous)));
  if (!later["events"].empty()) EXPECT_EQ(later["events"][0]["sequence"], previous + 1);

  HttpGet(http, "/api/jobs/no-such-job", &status);
  EXPECT_EQ(status, 404);
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
