#include "tests/metrics_running_job.h"

#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

}  // namespace

std::string HttpGet(const std::string& host_port, const std::string& path, int* status) {
  const size_t colon = host_port.rfind(':');
  httplib::Client client(host_port.substr(0, colon), std::stoi(host_port.substr(colon + 1)));
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  auto res = client.Get(path.c_str());
  if (status != nullptr) *status = res ? res->status : -1;
  return res ? res->body : "";
}

void RunningJobTest::SetUp() {
  example_ = dir_.path() + "/example";
  fs::create_directories(example_);
  ASSERT_TRUE(MakeExample(example_));
  server_ = std::make_unique<AttunedProcess>(
      dir_.path() + "/data",
      std::vector<std::string>{"--data-roots", example_, "--http", "127.0.0.1:0"});
  ASSERT_FALSE(server_->address().empty());
  ASSERT_FALSE(server_->http_address().empty()) << "no 'attuned http on' line";

  CliResult r =
      RunCli(server_->address(),
             ExampleSubmitArgs(example_, {"--max-steps", "100000", "--eval-every", "5",
                                          "--checkpoint-every", "20", "--name", "metrics-test"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  job_id_ = r.out.substr(0, r.out.find('\n'));
  ASSERT_FALSE(job_id_.empty());

  const std::string loss_series = absl::StrCat("attune_job_train_loss{job_id=\"", job_id_, "\"}");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (absl::StrContains(HttpGet(server_->http_address(), "/metrics"), loss_series)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  FAIL() << "no " << loss_series << " on /metrics within 30 s; server log:\n" << server_->Log();
}

void RunningJobTest::TearDown() {
  if (server_ != nullptr && !job_id_.empty()) RunCli(server_->address(), {"cancel", job_id_});
}

}  // namespace attune::testing
