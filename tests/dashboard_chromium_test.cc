// Drives the dashboard in headless Chromium (Debian's /usr/bin/chromium) against a real attuned
// with a running example job, through the DevTools protocol over --remote-debugging-pipe
// (JSON messages separated by NUL bytes on fds 3 and 4; no websocket needed). Checks that the
// loss chart gains points while the page stays loaded (live updates, no reload).
//
// With ATTUNE_DASHBOARD_SCREENSHOT=<file.png> set, also saves a screenshot of the page there
// (how docs/dashboard.png is made).
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/metrics_running_job.h"

namespace attune::testing {
namespace {

using nlohmann::json;

// A DevTools session with one page, over the pipe pair.
class DevTools {
 public:
  DevTools(int to_browser, int from_browser) : to_(to_browser), from_(from_browser) {}

  // Sends a command and returns its "result"; a JSON null on error or timeout.
  json Call(const std::string& method, json params, const std::string& session = "") {
    json message = {{"id", ++last_id_}, {"method", method}, {"params", std::move(params)}};
    if (!session.empty()) message["sessionId"] = session;
    const std::string text = message.dump() + std::string(1, '\0');
    if (write(to_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) return nullptr;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      size_t end = buffer_.find('\0');
      if (end == std::string::npos) {
        // Read only what poll says is there, so a silent browser fails at the deadline.
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{from_, POLLIN, 0};
        if (poll(&p, 1, std::max<int>(0, static_cast<int>(left.count()))) <= 0) continue;
        char chunk[65536];
        ssize_t n = read(from_, chunk, sizeof(chunk));
        if (n <= 0) return nullptr;
        buffer_.append(chunk, static_cast<size_t>(n));
        continue;
      }
      json reply = json::parse(buffer_.substr(0, end), nullptr, /*allow_exceptions=*/false);
      buffer_.erase(0, end + 1);
      if (reply.is_object() && reply.value("id", -1) == last_id_) {
        if (reply.contains("error")) {
          ADD_FAILURE() << method << ": " << reply["error"].dump();
          return nullptr;
        }
        return reply["result"];
      }
      // Anything else is an event; ignore it.
    }
    return nullptr;
  }

 private:
  int to_;
  int from_;
  int last_id_ = 0;
  std::string buffer_;
};

TEST_F(RunningJobTest, DashboardChartGainsPointsWithoutReload) {
  int to_browser[2], from_browser[2];
  ASSERT_EQ(pipe(to_browser), 0);
  ASSERT_EQ(pipe(from_browser), 0);
  const std::string url = absl::StrCat("http://", server_->http_address(), "/#job=", job_id_);
  ChildOptions options;
  options.stdout_path = dir_.path() + "/chromium.log";
  options.extra_fds = {{3, to_browser[0]}, {4, from_browser[1]}};
  ChildProcess chromium(
      {"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
       "--no-first-run", "--disable-background-networking", "--disable-component-update",
       "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,900",
       "--user-data-dir=" + dir_.path() + "/chromium", "--remote-debugging-pipe", url},
      options);
  close(to_browser[0]);
  close(from_browser[1]);
  DevTools devtools(to_browser[1], from_browser[0]);

  // Find the page the browser opened and attach to it.
  std::string target_id;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (target_id.empty() && std::chrono::steady_clock::now() < deadline) {
    json targets = devtools.Call("Target.getTargets", json::object());
    ASSERT_FALSE(targets.is_null()) << ReadFile(dir_.path() + "/chromium.log");
    for (const auto& t : targets["targetInfos"]) {
      if (t["type"] == "page") target_id = t["targetId"];
    }
    if (target_id.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_FALSE(target_id.empty());
  json attached =
      devtools.Call("Target.attachToTarget", {{"targetId", target_id}, {"flatten", true}});
  ASSERT_FALSE(attached.is_null());
  const std::string session = attached["sessionId"];

  auto evaluate = [&](const std::string& expression) {
    json r = devtools.Call("Runtime.evaluate",
                           {{"expression", expression}, {"returnByValue", true}}, session);
    return r.is_null() ? json() : r["result"].value("value", json());
  };
  auto points = [&] {
    json v =
        evaluate("(document.getElementById('loss-chart') || {dataset: {}}).dataset.points || '0'");
    return v.is_string() ? std::stoi(v.get<std::string>()) : 0;
  };

  // The page loads, selects the job and draws its first points.
  int first = 0;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((first = points()) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_GT(first, 0) << "the loss chart never got a point; chromium log:\n"
                      << ReadFile(dir_.path() + "/chromium.log");
  // Mark this page load; a reload would lose the mark.
  evaluate("window.attuneTestMark = 'same page'; 1");
  EXPECT_EQ(evaluate("document.querySelector('#jobs tbody tr').dataset.jobId"), job_id_);
  EXPECT_EQ(evaluate("document.querySelector('#jobs tbody .state').textContent"), "RUNNING");

  int later = first;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((later = points()) <= first && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_GT(later, first) << "the loss chart did not gain points";
  EXPECT_EQ(evaluate("window.attuneTestMark"), "same page");
  // The other charts and the spec are filled in from the same job.
  EXPECT_GT(
      std::stoi(evaluate("document.getElementById('lr-chart').dataset.points").get<std::string>()),
      0);
  EXPECT_NE(
      evaluate("document.getElementById('job-spec').textContent").get<std::string>().find("v=4"),
      std::string::npos);

  if (const char* shot = std::getenv("ATTUNE_DASHBOARD_SCREENSHOT")) {
    std::this_thread::sleep_for(std::chrono::seconds(20));  // let the curves grow
    json png = devtools.Call("Page.captureScreenshot", {{"format", "png"}}, session);
    ASSERT_FALSE(png.is_null());
    std::string bytes;
    ASSERT_TRUE(absl::Base64Unescape(png["data"].get<std::string>(), &bytes));
    std::ofstream(shot, std::ios::binary) << bytes;
  }
  devtools.Call("Browser.close", json::object());
  close(to_browser[1]);
  close(from_browser[0]);
}

}  // namespace
}  // namespace attune::testing
