#include "tests/chromium_page.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace attune::testing {

using nlohmann::json;

json DevTools::Call(const std::string& method, json params, const std::string& session) {
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

ChromiumPage::ChromiumPage(const std::string& url, const std::string& work_dir)
    : work_dir_(work_dir) {
  if (pipe(to_browser_) != 0 || pipe(from_browser_) != 0) {
    ADD_FAILURE() << "pipe failed";
    return;
  }
  ChildOptions options;
  options.stdout_path = work_dir + "/chromium.log";
  options.extra_fds = {{3, to_browser_[0]}, {4, from_browser_[1]}};
  chromium_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{
          "/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
          "--no-first-run", "--disable-background-networking", "--disable-component-update",
          "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,900",
          "--user-data-dir=" + work_dir + "/chromium", "--remote-debugging-pipe", url},
      options);
  close(to_browser_[0]);
  close(from_browser_[1]);
  devtools_ = std::make_unique<DevTools>(to_browser_[1], from_browser_[0]);

  // Find the page the browser opened and attach to it.
  std::string target_id;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (target_id.empty() && std::chrono::steady_clock::now() < deadline) {
    json targets = devtools_->Call("Target.getTargets", json::object());
    if (targets.is_null()) {
      ADD_FAILURE() << "no answer from chromium: " << Log();
      return;
    }
    for (const auto& t : targets["targetInfos"]) {
      if (t["type"] == "page") target_id = t["targetId"];
    }
    if (target_id.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (target_id.empty()) {
    ADD_FAILURE() << "chromium opened no page: " << Log();
    return;
  }
  json attached =
      devtools_->Call("Target.attachToTarget", {{"targetId", target_id}, {"flatten", true}});
  if (attached.is_null()) return;
  session_ = attached["sessionId"];
}

ChromiumPage::~ChromiumPage() {
  if (devtools_) devtools_->Call("Browser.close", json::object());
  if (to_browser_[1] >= 0) close(to_browser_[1]);
  if (from_browser_[0] >= 0) close(from_browser_[0]);
}

json ChromiumPage::Evaluate(const std::string& expression) {
  json r = Call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}});
  return r.is_null() ? json() : r["result"].value("value", json());
}

json ChromiumPage::Call(const std::string& method, json params) {
  if (!ok()) return nullptr;
  return devtools_->Call(method, std::move(params), session_);
}

std::string ChromiumPage::Log() const { return ReadFile(work_dir_ + "/chromium.log"); }

}  // namespace attune::testing
