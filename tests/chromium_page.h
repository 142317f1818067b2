// A page in headless Chromium (Debian's /usr/bin/chromium) driven through the DevTools protocol
// over --remote-debugging-pipe (JSON messages separated by NUL bytes on fds 3 and 4; no websocket
// needed), for the dashboard tests. Every call waits at most 30 s, so a silent browser fails the
// test instead of hanging it. Not thread-safe; one test thread.
#ifndef ATTUNE_TESTS_CHROMIUM_PAGE_H_
#define ATTUNE_TESTS_CHROMIUM_PAGE_H_

#include <memory>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/attuned_process.h"

namespace attune::testing {

// A DevTools session over the pipe pair.
class DevTools {
 public:
  DevTools(int to_browser, int from_browser) : to_(to_browser), from_(from_browser) {}

  // Sends a command and returns its "result"; a JSON null on error or timeout.
  nlohmann::json Call(const std::string& method, nlohmann::json params,
                      const std::string& session = "");

 private:
  int to_;
  int from_;
  int last_id_ = 0;
  std::string buffer_;
};

// Chromium opened on `url`, attached to its page. `work_dir` holds the profile and
// chromium.log. On failure (no page within 60 s) ok() is false and a test failure is recorded.
class ChromiumPage {
 public:
  ChromiumPage(const std::string& url, const std::string& work_dir);
  ~ChromiumPage();  // closes the browser
  ChromiumPage(const ChromiumPage&) = delete;
  ChromiumPage& operator=(const ChromiumPage&) = delete;

  bool ok() const { return !session_.empty(); }
  // The value of `expression` evaluated in the page; null on error.
  nlohmann::json Evaluate(const std::string& expression);
  // A DevTools command in the page's session (e.g. Page.captureScreenshot).
  nlohmann::json Call(const std::string& method, nlohmann::json params);
  // chromium.log so far.
  std::string Log() const;

 private:
  std::string work_dir_;
  int to_browser_[2] = {-1, -1};
  int from_browser_[2] = {-1, -1};
  std::unique_ptr<ChildProcess> chromium_;
  std::unique_ptr<DevTools> devtools_;
  std::string session_;
};

}  // namespace attune::testing

#endif  // ATTUNE_TESTS_CHROMIUM_PAGE_H_
