#include "server/http/http_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "server/http/fake_jobs_source.h"

namespace attune::http {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// One GET sent on a plain TCP connection, whose answer is read only when the test asks: a client
// that opens a stream and does not read it.
class RawRequest {
 public:
  RawRequest(int port, const std::string& path) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size())) {
      ADD_FAILURE() << "cannot send GET " << path << " to port " << port;
    }
  }
  ~RawRequest() { close(fd_); }
  RawRequest(const RawRequest&) = delete;
  RawRequest& operator=(const RawRequest&) = delete;

  // Reads until the response head is complete or `deadline`; returns the head ("" if none).
  std::string Head(Clock::time_point deadline) {
    while (received_.find("\r\n\r\n") == std::string::npos && ReadSome(deadline)) {
    }
    const size_t end = received_.find("\r\n\r\n");
    return end == std::string::npos ? "" : received_.substr(0, end + 4);
  }
  // Reads until the server closes the connection or `deadline`; true when it closed.
  bool ClosedBy(Clock::time_point deadline) {
    while (ReadSome(deadline)) {
    }
    return closed_;
  }

 private:
  // One read of what has arrived, waiting up to `deadline`; false at the end or on timeout.
  bool ReadSome(Clock::time_point deadline) {
    if (closed_) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buffer[4096];
    const ssize_t n = read(fd_, buffer, sizeof(buffer));
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    received_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string received_;
  bool closed_ = false;
};

// The events of a server-sent-events body, each as the JSON of its `data:` line.
std::vector<nlohmann::json> EventData(const std::string& body) {
  std::vector<nlohmann::json> events;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (absl::ConsumePrefix(&line, "data: ")) events.push_back(nlohmann::json::parse(line));
  }
  return events;
}

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

TEST_F(HttpServerTest, SixtyFourStalledStreamsLeaveHealthzAndMetricsAnswering) {
  const int max_streams = HttpServerOptions{}.max_streams;
  std::vector<std::unique_ptr<RawRequest>> streams;
  for (int i = 0; i < 64; ++i) {
    streams.push_back(std::make_unique<RawRequest>(server_->port(), "/api/jobs/job-1/stream"));
  }
  httplib::Client probe("127.0.0.1", server_->port());
  probe.set_connection_timeout(1);
  probe.set_read_timeout(1);
  probe.set_write_timeout(1);
  for (const char* path : {"/healthz", "/metrics", "/api/jobs"}) {
    const Clock::time_point start = Clock::now();
    auto res = probe.Get(path);
    ASSERT_TRUE(res) << path << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200) << path;
    EXPECT_LT(Clock::now() - start, 1s) << path;
  }
  // The first max_streams requests stream; every one beyond is answered 503 and closed at once
  // (not after httplib's 5 s keep-alive wait for a next request).
  int streaming = 0;
  std::vector<RawRequest*> busy;
  const Clock::time_point deadline = Clock::now() + 5s;
  for (const std::unique_ptr<RawRequest>& stream : streams) {
    const std::string head = stream->Head(deadline);
    if (head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0) {
      ++streaming;
      EXPECT_THAT(head, HasSubstr("Content-Type: text/event-stream\r\n"));
    } else if (head.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0) {
      busy.push_back(stream.get());
      EXPECT_THAT(head, HasSubstr("Retry-After: 1\r\n"));
    } else {
      ADD_FAILURE() << "unexpected answer: '" << head << "'";
    }
  }
  EXPECT_EQ(streaming, max_streams);
  EXPECT_EQ(busy.size(), static_cast<size_t>(64 - max_streams));
  const Clock::time_point closed_deadline = Clock::now() + 1s;
  for (RawRequest* stream : busy) EXPECT_TRUE(stream->ClosedBy(closed_deadline));
}

TEST_F(HttpServerTest, StreamOfAFinishedJobEndsAfterItsLastEvent) {
  source_.SetState("job-1", "SUCCEEDED");  // event 5, the last
  client_->set_read_timeout(3);            // the heartbeat comes every 15 s: this is a hang
  for (int after : {2, 5}) {
    std::string body;
    const Clock::time_point start = Clock::now();
    auto res = client_->Get("/api/jobs/job-1/stream?after=" + std::to_string(after),
                            [&](const char* data, size_t length) {
                              body.append(data, length);
                              return true;
                            });
    ASSERT_TRUE(res) << "after=" << after << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
    EXPECT_LT(Clock::now() - start, 2s) << "after=" << after;
    const std::vector<nlohmann::json> events = EventData(body);
    ASSERT_EQ(events.size(), static_cast<size_t>(5 - after)) << body;
    if (after == 2) {
      EXPECT_THAT(body, StartsWith("id: 3\nevent: step\n"));
      EXPECT_EQ(events.back()["sequence"], 5);
      EXPECT_EQ(events.back()["state"], "SUCCEEDED");
    }
  }
}

TEST_F(HttpServerTest, StreamEndsWithTheTerminalEventOfARunningJob) {
  client_->set_read_timeout(3);
  std::thread finish([this] {
    std::this_thread::sleep_for(300ms);
    source_.SetState("job-1", "FAILED");  // event 5
  });
  std::string body;
  auto res = client_->Get("/api/jobs/job-1/stream?after=4", [&](const char* data, size_t length) {
    body.append(data, length);
    return true;
  });
  finish.join();
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  const std::vector<nlohmann::json> events = EventData(body);
  ASSERT_EQ(events.size(), 1u) << body;
  EXPECT_EQ(events[0]["sequence"], 5);
  EXPECT_EQ(events[0]["state"], "FAILED");
}

TEST(HttpServerStreamsTest, AStreamBeyondTheCapIs503UntilOneCloses) {
  FakeJobsSource source;
  JobView job;
  job.id = "job-1";
  job.state = "RUNNING";
  source.PutJob(job);
  ServiceMetrics metrics(&source, {});
  HttpServerOptions options;
  options.threads = 4;
  options.max_streams = 2;
  auto server = HttpServer::Start(options, &source, &metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  const Clock::time_point deadline = Clock::now() + 5s;
  auto first = std::make_unique<RawRequest>(port, "/api/jobs/job-1/stream");
  RawRequest second(port, "/api/jobs/job-1/stream");
  ASSERT_THAT(first->Head(deadline), StartsWith("HTTP/1.1 200 OK\r\n"));
  ASSERT_THAT(second.Head(deadline), StartsWith("HTTP/1.1 200 OK\r\n"));
  RawRequest third(port, "/api/jobs/job-1/stream");
  const std::string head = third.Head(deadline);
  EXPECT_THAT(head, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_THAT(head, HasSubstr("Retry-After: 1\r\n"));
  // A client that goes away frees its place within a poll interval (250 ms), not a heartbeat.
  first.reset();
  const Clock::time_point closed = Clock::now();
  std::string next;
  while (Clock::now() < closed + 2s) {
    next = RawRequest(port, "/api/jobs/job-1/stream").Head(deadline);
    if (next.rfind("HTTP/1.1 200 OK\r\n", 0) == 0) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_THAT(next, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_LT(Clock::now() - closed, 1s);
}

TEST(HttpServerStartTest, MaxStreamsMustLeaveAThread) {
  FakeJobsSource source;
  ServiceMetrics metrics(&source, {});
  HttpServerOptions options;
  options.threads = 8;
  options.max_streams = 8;
  auto server = HttpServer::Start(options, &source, &metrics);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server.status().message(), "max_streams: 8 must be in 1..7 (threads - 1, threads = 8)");
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
