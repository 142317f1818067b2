#include "tests/attuned_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

// Waits for `pid` up to `timeout_s`; returns the exit code (128 + signal) or -1 on timeout.
int WaitFor(pid_t pid, int timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

}  // namespace

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "attune_it_XXXXXX").string();
  char* made = mkdtemp(pattern.data());
  path_ = made ? made : "";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty() && std::getenv("ATTUNE_KEEP_TEST_DIRS") == nullptr) fs::remove_all(path_, ec);
}

AttunedProcess::AttunedProcess(const std::string& data_dir,
                               const std::vector<std::string>& extra_args) {
  static int counter = 0;
  log_path_ = (fs::path(data_dir).parent_path() / absl::StrCat("attuned-", counter++, ".log")).string();
  std::vector<std::string> args = {ATTUNED_PATH, "--listen", "127.0.0.1:0", "--data-dir",
                                   data_dir, "--devices", "cpu"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  int out[2];
  if (pipe(out) != 0) {
    ADD_FAILURE() << "pipe failed";
    return;
  }
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    int err = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(err, STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    std::vector<char*> argv = Argv(args);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  // Read up to the "attuned listening on" line, with a deadline. With --http, the line
  // "attuned http on HOST:PORT" comes just before it.
  const std::string prefix = "attuned listening on ";
  const std::string http_prefix = "attuned http on ";
  std::string text;
  auto has_listening_line = [&] {
    size_t at = text.find(prefix);
    return at != std::string::npos && text.find('\n', at) != std::string::npos;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!has_listening_line() && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buffer[256];
    ssize_t n = read(out[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    text.append(buffer, n);
  }
  close(out[0]);  // later stdout writes are not needed (the server writes only these lines)
  if (!has_listening_line()) {
    ADD_FAILURE() << "attuned did not start; stdout: '" << text << "'; log:\n" << Log();
    return;
  }
  size_t http_at = text.find(http_prefix);
  if (http_at != std::string::npos) {
    http_at += http_prefix.size();
    http_address_ = text.substr(http_at, text.find('\n', http_at) - http_at);
  }
  const std::string line = text.substr(text.find(prefix));
  address_ = line.substr(prefix.size(), line.find('\n') - prefix.size());
}

AttunedProcess::~AttunedProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    WaitFor(pid_, 10);
  }
}

std::string AttunedProcess::Log() const { return ReadFile(log_path_); }

int AttunedProcess::StopWith(int signal, int timeout_s) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int code = WaitFor(pid_, timeout_s);
  if (code >= 0) pid_ = -1;
  return code;
}

CliResult RunCli(const std::string& server, const std::vector<std::string>& args,
                 int timeout_s) {
  static int counter = 0;
  std::string base = (fs::temp_directory_path() /
                      absl::StrCat("attune_cli_", getpid(), "_", counter++)).string();
  std::vector<std::string> argv_strings = {ATTUNE_CLI_PATH, "--server", server};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  CliResult result;
  pid_t pid = fork();
  if (pid == 0) {
    int out = open((base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open((base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    std::vector<char*> argv = Argv(argv_strings);
    execv(argv[0], argv.data());
    _exit(127);
  }
  result.exit_code = WaitFor(pid, timeout_s);
  if (result.exit_code < 0) {
    kill(pid, SIGKILL);
    WaitFor(pid, 5);
  }
  result.out = ReadFile(base + ".out");
  result.err = ReadFile(base + ".err");
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return result;
}

bool MakeExample(const std::string& dir) {
  std::string command = absl::StrCat("'", ATTUNE_MAKE_EXAMPLE_PATH, "' '", dir, "' > '", dir,
                                     "/make-example.log' 2>&1");
  int rc = std::system(command.c_str());
  if (rc != 0 || !fs::exists(fs::path(dir) / "model" / "config.json")) {
    ADD_FAILURE() << "make-example failed (" << rc << "): " << ReadFile(dir + "/make-example.log");
    return false;
  }
  return true;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace attune::testing
