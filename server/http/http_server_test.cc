#include "server/http/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "nlohmann/json.hpp"
#include "server/http/fake_jobs_source.h"

namespace attune::http {
namespace {

using ::testing::HasSubstr;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    JobView job;
    job.id = "job-1";
    job.name = "sst2";
    job.state = "QUEUED";
    job.spec.train.targets = {"q", "v"};
    job.spec.train.lr_ratios = {{"v", 4.0}};
    source_.PutJob(job);
    source_.SetState("job-1", "RUNNING");
    for (int i = 1; i <= 3; ++i) {
      StepMetrics step;
      step.step = i;
      step.total_steps = 10;
      step.train_loss = 1.0 / i;
      source_.AddStep("job-1", step);
    }
    metrics_ = std::make_unique<ServiceMetrics>(&source_, ServiceMetrics::Options{});
    auto server = HttpServer::Start(HttpServerOptions{}, &source_, metrics_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }

  FakeJobsSource source_;
  std::unique_ptr<ServiceMetrics> metrics_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpServerTest, BindsAFreePortAndReportsIt) {
  EXPECT_GT(server_->port(), 0);
  EXPECT_EQ(server_->address(), "127.0.0.1:" + std::to_string(server_->port()));
}

TEST_F(HttpServerTest, MetricsShowRunningJobLoss) {
  auto res = client_->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(res->body, HasSubstr("attune_job_train_loss{job_id=\"job-1\"} 0.333333"));
}

TEST_F(HttpServerTest, JobListAndDetail) {
  auto list = client_->Get("/api/jobs");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200);
  auto json = nlohmann::json::parse(list->body);
  ASSERT_EQ(json["jobs"].size(), 1u);
  EXPECT_EQ(json["jobs"][0]["id"], "job-1");
  EXPECT_EQ(json["jobs"][0]["step"], 3);

  auto detail = client_->Get("/api/jobs/job-1");
  ASSERT_TRUE(detail);
  EXPECT_EQ(detail->status, 200);
  json = nlohmann::json::parse(detail->body);
  EXPECT_EQ(json["spec"]["lrRatios"]["v"], 4.0);

  auto missing = client_->Get("/api/jobs/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(nlohmann::json::parse(missing->body)["error"], "job 'nope' not found");
}

TEST_F(HttpServerTest, EventsAfterASequenceHaveNoGapAndNoRepeat) {
  auto res = client_->Get("/api/jobs/job-1/events?after=2&limit=1");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  auto json = nlohmann::json::parse(res->body);
  ASSERT_EQ(json["events"].size(), 1u);
  EXPECT_EQ(json["events"][0]["sequence"], 3);
  EXPECT_EQ(json["events"][0]["step"], 2);
  EXPECT_EQ(json["nextAfter"], 3);

  res = client_->Get("/api/jobs/job-1/events?after=3");
  json = nlohmann::json::parse(res->body);
  ASSERT_EQ(json["events"].size(), 1u);
  EXPECT_EQ(json["events"][0]["sequence"], 4);

  res = client_->Get("/api/jobs/job-1/events?after=-1");
  EXPECT_EQ(res->status, 400);
  EXPECT_THAT(nlohmann::json::parse(res->body)["error"].get<std::string>(),
              HasSubstr("after: '-1' is not an integer"));
}

TEST_F(HttpServerTest, StreamSendsServerSentEvents) {
  std::string received;
  auto res = client_->Get("/api/jobs/job-1/stream?after=1", [&](const char* data, size_t length) {
    received.append(data, length);
    return received.find("id: 4\n") == std::string::npos;
  });
  // The client ends the stream itself once it has seen event 4.
  EXPECT_THAT(received, HasSubstr("id: 2\nevent: step\ndata: {"));
  EXPECT_THAT(received, HasSubstr("id: 4\n"));
  EXPECT_EQ(received.find("id: 1\n"), std::string::npos);
}

TEST_F(HttpServerTest, ServesEmbeddedDashboard) {
  auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(page->body, HasSubstr("id=\"loss-chart\""));
  auto script = client_->Get("/static/app.js");
  ASSERT_TRUE(script);
  EXPECT_EQ(script->status, 200);
  EXPECT_THAT(script->body, HasSubstr("/api/jobs/"));
  EXPECT_EQ(client_->Get("/static/missing.js")->status, 404);
}

TEST(ParseHttpAddressTest, AcceptsHostPortForms) {
  auto a = ParseHttpAddress("127.0.0.1:9090");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9090);
  a = ParseHttpAddress(":0");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "0.0.0.0");
  EXPECT_EQ(a->port, 0);
  a = ParseHttpAddress("[::1]:80");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
}

TEST(ParseHttpAddressTest, RejectsBadAddressesNamingTheFlag) {
  for (const char* bad : {"9090", "host:x", "host:70000", "::1:80"}) {
    auto a = ParseHttpAddress(bad);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(a.status().message()), HasSubstr("--http:")) << bad;
  }
}

TEST(HttpServerStartTest, BusyPortIsUnavailable) {
  FakeJobsSource source;
  ServiceMetrics metrics(&source, {});
  auto first = HttpServer::Start(HttpServerOptions{}, &source, &metrics);
  ASSERT_TRUE(first.ok());
  HttpServerOptions options;
  options.port = (*first)->port();
  auto second = HttpServer::Start(options, &source, &metrics);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace attune::http
