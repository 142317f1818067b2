#include "server/engine/chat/chat_renderer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/engine/chat/render_helper_source.h"

extern char** environ;

namespace attune::chat {
namespace {

using nlohmann::json;

absl::Status HelperFailed(const ChatRendererOptions& options, absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat("chat template helper (", options.python, "): ", what,
                   "; is python3-jinja2 installed (scripts/install-deps.sh)?"));
}

// Milliseconds left until `deadline`, at least 0, for poll().
int MillisLeft(absl::Time deadline) {
  return static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
}

// Writes all of `data`, or fails at the deadline. MSG_NOSIGNAL: a dead helper is an error, not
// SIGPIPE.
absl::Status SendAll(int fd, std::string_view data, absl::Time deadline) {
  while (!data.empty()) {
    pollfd p{fd, POLLOUT, 0};
    const int ready = poll(&p, 1, MillisLeft(deadline));
    if (ready == 0) return absl::DeadlineExceededError("write");
    if (ready < 0 && errno == EINTR) continue;
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("the helper exited");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Reads up to the next newline into `line` (`pending` keeps what follows).
absl::Status ReadLine(int fd, std::string& pending, std::string& line, absl::Time deadline) {
  char buffer[65536];
  for (;;) {
    if (size_t nl = pending.find('\n'); nl != std::string::npos) {
      line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      return absl::OkStatus();
    }
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, MillisLeft(deadline));
    if (ready == 0) return absl::DeadlineExceededError("read");
    if (ready < 0 && errno == EINTR) continue;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("the helper exited");
    pending.append(buffer, static_cast<size_t>(n));
  }
}

// The reply's "error", as the status the caller reports.
absl::Status ReplyError(const json& reply) {
  return absl::InvalidArgumentError(
      absl::StrCat("the chat template raised: ", reply["error"].get<std::string>()));
}

absl::StatusOr<RenderedChat> ParseRendered(const json& reply) {
  RenderedChat out;
  out.text = reply.at("text").get<std::string>();
  out.generation_blocks = reply.value("generation", false);
  for (const json& span : reply.at("spans")) {
    const size_t begin = span.at(0).get<size_t>();
    const size_t end = span.at(1).get<size_t>();
    if (begin > end || end > out.text.size()) {
      return absl::InternalError("chat template helper: span outside the text");
    }
    out.spans.emplace_back(begin, end);
  }
  return out;
}

}  // namespace

ChatRenderer::ChatRenderer(ChatTemplate chat_template, ChatRendererOptions options)
    : template_(std::move(chat_template)), options_(std::move(options)) {}

ChatRenderer::~ChatRenderer() {
  absl::MutexLock lock(&mu_);
  StopLocked();
}

absl::StatusOr<std::unique_ptr<ChatRenderer>> ChatRenderer::Create(
    const ChatTemplate& chat_template, const ChatRendererOptions& options) {
  std::unique_ptr<ChatRenderer> renderer(new ChatRenderer(chat_template, options));
  absl::MutexLock lock(&renderer->mu_);
  RETURN_IF_ERROR(renderer->StartLocked());
  return renderer;
}

absl::Status ChatRenderer::StartLocked() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return HelperFailed(options_, absl::StrCat("socketpair: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  // -I: no user site, no PYTHON* variables; the helper sees only Debian's packages.
  std::string python = options_.python, isolated = "-I", command = "-c";
  std::string source = kRenderHelperSource;
  char* argv[] = {python.data(), isolated.data(), command.data(), source.data(), nullptr};
  std::string locale = "LC_ALL=C.UTF-8", path = "PATH=/usr/bin:/bin";
  char* env[] = {locale.data(), path.data(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, python.c_str(), &actions, nullptr, argv, env);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return HelperFailed(options_, absl::StrCat("cannot start: ", std::strerror(rc)));
  }
  pid_ = pid;
  fd_ = fds[0];
  pending_.clear();
  json hello = {{"template", template_.source},
                {"variables", json::parse(template_.variables_json)}};
  absl::StatusOr<std::string> reply = ExchangeLocked(hello.dump());
  if (!reply.ok()) return HelperFailed(options_, reply.status().message());
  json parsed = json::parse(*reply, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.contains("ok")) return absl::OkStatus();
  StopLocked();
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model: ", template_.origin,
                     ": the chat template does not compile: ", parsed["error"].get<std::string>()));
  }
  return HelperFailed(options_, "unreadable reply");
}

void ChatRenderer::StopLocked() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
}

absl::StatusOr<std::string> ChatRenderer::ExchangeLocked(const std::string& line) {
  const absl::Time deadline = absl::Now() + options_.timeout;
  std::string reply;
  absl::Status s = SendAll(fd_, absl::StrCat(line, "\n"), deadline);
  if (s.ok()) s = ReadLine(fd_, pending_, reply, deadline);
  if (s.ok()) return reply;
  StopLocked();
  if (absl::IsDeadlineExceeded(s)) {
    return absl::InvalidArgumentError(absl::StrCat("the chat template took longer than ",
                                                   absl::FormatDuration(options_.timeout)));
  }
  return s;
}

absl::StatusOr<RenderedChat> ChatRenderer::Render(const std::string& conversation_json,
                                                  const std::string& variables_json) {
  absl::MutexLock lock(&mu_);
  if (pid_ < 0) RETURN_IF_ERROR(StartLocked());
  // ordered_json: nlohmann::json would sort the members, and templates print them in the order
  // written (tools | tojson), as transformers does. dump() puts the request on one line.
  using ordered_json = nlohmann::ordered_json;
  const ordered_json conversation =
      ordered_json::parse(conversation_json, nullptr, /*allow_exceptions=*/false);
  const ordered_json variables =
      ordered_json::parse(variables_json, nullptr, /*allow_exceptions=*/false);
  if (!conversation.is_object() || !variables.is_object()) {
    return absl::InvalidArgumentError("chat template: conversation and variables must be objects");
  }
  const ordered_json request = {{"conversation", conversation}, {"variables", variables}};
  absl::StatusOr<std::string> line = ExchangeLocked(request.dump());
  if (!line.ok()) {
    if (absl::IsUnavailable(line.status())) {
      return absl::InvalidArgumentError(
          "the chat template helper died on this conversation "
          "(more than 2 GiB of memory?)");
    }
    return line.status();
  }
  json reply = json::parse(*line, nullptr, /*allow_exceptions=*/false);
  if (!reply.is_object()) return absl::InternalError("chat template helper: unreadable reply");
  if (reply.contains("error")) return ReplyError(reply);
  return ParseRendered(reply);
}

}  // namespace attune::chat
