// A real Prometheus server (Debian's /usr/bin/prometheus) scrapes a real attuned with a running
// example job every second; its query API must return the job's train-loss series.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/metrics_running_job.h"

namespace attune::testing {
namespace {

// A port that was free a moment ago (Prometheus cannot be asked to pick one and print it).
int FreePort() {
  int sock = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t length = sizeof(addr);
  getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &length);
  const int port = ntohs(addr.sin_port);
  close(sock);
  return port;
}

TEST_F(RunningJobTest, PrometheusScrapesTheRunningJobsLoss) {
  const std::string config = dir_.path() + "/prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                        << "scrape_configs:\n  - job_name: attune\n    static_configs:\n"
                        << "      - targets: ['" << server_->http_address() << "']\n";
  const std::string prometheus_address = absl::StrCat("127.0.0.1:", FreePort());
  ChildProcess prometheus({"/usr/bin/prometheus", "--config.file=" + config,
                           "--storage.tsdb.path=" + dir_.path() + "/tsdb",
                           "--web.listen-address=" + prometheus_address},
                          dir_.path() + "/prometheus.log");

  const std::string query =
      absl::StrCat("/api/v1/query?query=attune_job_train_loss%7Bjob_id%3D%22", job_id_, "%22%7D");
  nlohmann::json answer;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    const std::string body = HttpGet(prometheus_address, query, &status);
    if (status == 200) {
      answer = nlohmann::json::parse(body);
      if (!answer["data"]["result"].empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_EQ(answer["status"], "success") << answer.dump();
  ASSERT_EQ(answer["data"]["result"].size(), 1u) << answer.dump();
  const auto& series = answer["data"]["result"][0];
  EXPECT_EQ(series["metric"]["__name__"], "attune_job_train_loss");
  EXPECT_EQ(series["metric"]["job_id"], job_id_);
  EXPECT_EQ(series["metric"]["job"], "attune");
  const double loss = std::stod(series["value"][1].get<std::string>());
  EXPECT_GT(loss, 0.0);
  EXPECT_LT(loss, 10.0);
}

}  // namespace
}  // namespace attune::testing
