#include "tests/metrics_running_job.h"

#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

std::vector<char*> Argv(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

// Waits up to `timeout_s` for `pid`; returns its exit code, 128 + signal, or -1 on timeout.
int Reap(pid_t pid, int timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 || std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

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

int RunProgram(const std::vector<std::string>& argv, const std::string& stdin_text,
               std::string* output, int timeout_s) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(out[1], STDERR_FILENO);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    std::vector<char*> args = Argv(argv);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  // Small inputs (a scrape) fit the pipe buffer only partly; write and read by turns.
  size_t written = 0;
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  bool in_open = true;
  while (std::chrono::steady_clock::now() < deadline) {
    if (in_open && written < stdin_text.size()) {
      ssize_t n = write(in[1], stdin_text.data() + written, stdin_text.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
    }
    if (in_open && written == stdin_text.size()) {
      close(in[1]);
      in_open = false;
    }
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 20) > 0) {
      char buffer[4096];
      ssize_t n = read(out[0], buffer, sizeof(buffer));
      if (n <= 0) break;
      output->append(buffer, static_cast<size_t>(n));
    }
  }
  if (in_open) close(in[1]);
  close(out[0]);
  int code = Reap(pid, 5);
  if (code < 0) {
    kill(pid, SIGKILL);
    Reap(pid, 5);
  }
  return code;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_path,
                           const std::vector<std::pair<int, int>>& extra_fds) {
  pid_ = fork();
  if (pid_ == 0) {
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, STDIN_FILENO);
    for (const auto& [child_fd, parent_fd] : extra_fds) dup2(parent_fd, child_fd);
    std::vector<char*> args = Argv(argv);
    execv(args[0], args.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  if (Reap(pid_, 10) < 0) {
    kill(pid_, SIGKILL);
    Reap(pid_, 10);
  }
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

  CliResult r = RunCli(server_->address(), {"submit",
                                            "--model",
                                            example_ + "/model",
                                            "--train",
                                            example_ + "/train.jsonl",
                                            "--validation",
                                            example_ + "/validation.jsonl",
                                            "--task",
                                            "classification",
                                            "--targets",
                                            "q,v",
                                            "--lr-ratio",
                                            "v=4",
                                            "--seed",
                                            "7",
                                            "--max-steps",
                                            "100000",
                                            "--eval-every",
                                            "5",
                                            "--checkpoint-every",
                                            "20",
                                            "--name",
                                            "metrics-test"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  job_id_ = r.out.substr(0, r.out.find('\n'));
  ASSERT_FALSE(job_id_.empty());

  const std::string loss_series = absl::StrCat("attune_job_train_loss{job_id=\"", job_id_, "\"}");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (absl::StrContains(HttpGet(server_->http_address(), "/metrics"), loss_series)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  FAIL() << "no " << loss_series << " on /metrics within 120 s; server log:\n" << server_->Log();
}

void RunningJobTest::TearDown() {
  if (server_ != nullptr && !job_id_.empty()) RunCli(server_->address(), {"cancel", job_id_});
}

}  // namespace attune::testing
