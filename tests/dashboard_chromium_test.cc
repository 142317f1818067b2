// Drives the dashboard in headless Chromium (Debian's /usr/bin/chromium) against a real attuned
// with a running example job, through the DevTools protocol (tests/chromium_page.h). Checks that
// the loss chart gains points while the page stays loaded (live updates, no reload).
//
// With ATTUNE_DASHBOARD_SCREENSHOT=<file.png> set, also saves a screenshot of the page there
// (how docs/dashboard.png is made).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/chromium_page.h"
#include "tests/metrics_running_job.h"

namespace attune::testing {
namespace {

using nlohmann::json;

TEST_F(RunningJobTest, DashboardChartGainsPointsWithoutReload) {
  const std::string url = absl::StrCat("http://", server_->http_address(), "/#job=", job_id_);
  ChromiumPage page(url, dir_.path());
  ASSERT_TRUE(page.ok());
  auto evaluate = [&](const std::string& expression) { return page.Evaluate(expression); };
  auto points = [&] {
    json v =
        evaluate("(document.getElementById('loss-chart') || {dataset: {}}).dataset.points || '0'");
    return v.is_string() ? std::stoi(v.get<std::string>()) : 0;
  };

  // The page loads, selects the job and draws its first points.
  int first = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((first = points()) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_GT(first, 0) << "the loss chart never got a point; chromium log:\n" << page.Log();
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
    json png = page.Call("Page.captureScreenshot", {{"format", "png"}});
    ASSERT_FALSE(png.is_null());
    std::string bytes;
    ASSERT_TRUE(absl::Base64Unescape(png["data"].get<std::string>(), &bytes));
    std::ofstream(shot, std::ios::binary) << bytes;
  }
}

}  // namespace
}  // namespace attune::testing
