#include "tests/attuned_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::vector<char*> Argv(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

// A unique path under the temp dir for one child's output.
std::string TempOutputPath(const std::string& stem) {
  static int counter = 0;
  return (fs::temp_directory_path() / absl::StrCat(stem, "_", getpid(), "_", counter++)).string();
}

// Milliseconds until `deadline`, at least 0.
int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Stdout and stderr appended to `path`.
ChildOptions LogTo(const std::string& path) {
  ChildOptions options;
  options.stdout_path = path;
  return options;
}

// attuned's stdout on a pipe (for its start lines), its stderr appended to `log_path`.
ChildOptions AttunedOptions(const std::string& log_path) {
  ChildOptions options;
  options.pipe_stdout = true;
  options.stderr_path = log_path;
  return options;
}

// In the child, between fork and exec: only async-signal-safe calls.
[[noreturn]] void ExecChild(char* const* argv, const ChildOptions& options, int stdin_read,
                            int stdout_write) {
  int in = stdin_read >= 0 ? stdin_read : open("/dev/null", O_RDONLY);
  int out = stdout_write >= 0
                ? stdout_write
                : open(options.stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int err = options.stderr_path.empty()
                ? -1
                : open(options.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (in < 0 || out < 0) _exit(127);
  dup2(in, STDIN_FILENO);
  dup2(out, STDOUT_FILENO);
  dup2(err >= 0 ? err : out, STDERR_FILENO);
  for (const auto& [child_fd, parent_fd] : options.extra_fds) dup2(parent_fd, child_fd);
  execv(argv[0], argv);
  _exit(127);
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

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_path)
    : ChildProcess(argv, LogTo(log_path)) {}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const ChildOptions& options) {
  // The pipes are close-on-exec; the child's dup2 copies onto 0 and 1 are not.
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  if ((options.pipe_stdin && pipe2(in, O_CLOEXEC) != 0) ||
      (options.pipe_stdout && pipe2(out, O_CLOEXEC) != 0)) {
    ADD_FAILURE() << "pipe failed for " << argv[0];
    return;
  }
  std::vector<char*> args = Argv(argv);  // built before fork: no allocation in the child
  pid_ = fork();
  if (pid_ == 0) ExecChild(args.data(), options, in[0], out[1]);
  if (in[0] >= 0) close(in[0]);
  if (out[1] >= 0) close(out[1]);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
  if (pid_ < 0) ADD_FAILURE() << "fork failed for " << argv[0];
}

ChildProcess::~ChildProcess() {
  CloseStdin();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  if (pid_ > 0 && StopWith(SIGTERM, 10) < 0) StopWith(SIGKILL, 10);
}

void ChildProcess::CloseStdin() {
  if (stdin_fd_ >= 0) close(stdin_fd_);
  stdin_fd_ = -1;
}

int ChildProcess::Wait(int timeout_s) {
  if (pid_ <= 0) return -1;
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  while (true) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_ || done < 0) {
      pid_ = -1;
      if (done < 0) return -1;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
    }
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int ChildProcess::StopWith(int signal, int timeout_s) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  return Wait(timeout_s);
}

int RunProgram(const std::vector<std::string>& argv, const std::string& stdin_text,
               std::string* output, int timeout_s) {
  // A child that exits before reading all its input must fail the write (EPIPE), not kill the
  // test with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  const std::string output_path = TempOutputPath("attune_run");
  int code = -1;
  {
    ChildOptions options = LogTo(output_path);
    options.pipe_stdin = true;
    ChildProcess child(argv, options);
    // Small inputs (a scrape) fit the pipe buffer only partly: write as the child reads.
    fcntl(child.stdin_fd(), F_SETFL, O_NONBLOCK);
    const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
    size_t written = 0;
    while (written < stdin_text.size() && Clock::now() < deadline) {
      pollfd p{child.stdin_fd(), POLLOUT, 0};
      if (poll(&p, 1, std::min(MillisLeft(deadline), 100)) <= 0) continue;
      ssize_t n = write(child.stdin_fd(), stdin_text.data() + written, stdin_text.size() - written);
      if (n < 0 && errno != EAGAIN) break;  // the child closed its stdin
      if (n > 0) written += static_cast<size_t>(n);
    }
    child.CloseStdin();
    code = child.Wait(MillisLeft(deadline) / 1000 + 1);
  }  // on timeout the destructor stops the child
  *output += ReadFile(output_path);
  std::remove(output_path.c_str());
  return code;
}

AttunedProcess::AttunedProcess(const std::string& data_dir,
                               const std::vector<std::string>& extra_args) {
  static int counter = 0;
  log_path_ =
      (fs::path(data_dir).parent_path() / absl::StrCat("attuned-", counter++, ".log")).string();
  std::vector<std::string> args = {ATTUNED_PATH, "--listen",  "127.0.0.1:0", "--data-dir",
                                   data_dir,     "--devices", "cpu"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  child_ = std::make_unique<ChildProcess>(args, AttunedOptions(log_path_));
  ReadStartLines();
}

AttunedProcess::AttunedProcess(const std::vector<std::string>& argv, std::string log_path)
    : log_path_(std::move(log_path)) {
  child_ = std::make_unique<ChildProcess>(argv, AttunedOptions(log_path_));
  ReadStartLines();
}

std::unique_ptr<AttunedProcess> AttunedProcess::StartExact(const std::vector<std::string>& argv,
                                                           const std::string& log_path) {
  return std::unique_ptr<AttunedProcess>(new AttunedProcess(argv, log_path));
}

void AttunedProcess::ReadStartLines() {
  // With --http, the line "attuned http on HOST:PORT" comes just before the listening line.
  const std::string prefix = "attuned listening on ";
  const std::string http_prefix = "attuned http on ";
  std::string text;
  auto has_listening_line = [&] {
    size_t at = text.find(prefix);
    return at != std::string::npos && text.find('\n', at) != std::string::npos;
  };
  const int fd = child_->stdout_fd();
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (fd >= 0 && !has_listening_line() && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, std::min(MillisLeft(deadline), 100)) <= 0) continue;
    char buffer[256];
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    text.append(buffer, n);
  }
  // Later stdout writes are not read: the server writes only these lines, and a write to the
  // pipe that nobody reads does not block one short line.
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

AttunedProcess::~AttunedProcess() { child_->StopWith(SIGKILL, 10); }

std::string AttunedProcess::Log() const { return ReadFile(log_path_); }

int AttunedProcess::StopWith(int signal, int timeout_s) {
  return child_->StopWith(signal, timeout_s);
}

CliResult RunCli(const std::string& server, const std::vector<std::string>& args, int timeout_s) {
  const std::string base = TempOutputPath("attune_cli");
  std::vector<std::string> argv = {ATTUNE_CLI_PATH, "--server", server};
  argv.insert(argv.end(), args.begin(), args.end());
  CliResult result;
  {
    ChildOptions options = LogTo(base + ".out");
    options.stderr_path = base + ".err";
    ChildProcess cli(argv, options);
    result.exit_code = cli.Wait(timeout_s);
  }  // on timeout the destructor stops it
  result.out = ReadFile(base + ".out");
  result.err = ReadFile(base + ".err");
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return result;
}

std::vector<std::string> ExampleSubmitArgs(const std::string& dir,
                                           const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"submit",
                                   "--model",
                                   dir + "/model",
                                   "--train",
                                   dir + "/train.jsonl",
                                   "--validation",
                                   dir + "/validation.jsonl",
                                   "--task",
                                   "classification",
                                   "--packing",
                                   "off",
                                   "--targets",
                                   "q,v",
                                   "--lr-ratio",
                                   "v=4",
                                   "--seed",
                                   "7"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

bool MakeExample(const std::string& dir) {
  std::string output;
  const int rc = RunProgram({ATTUNE_MAKE_EXAMPLE_PATH, dir}, "", &output, 120);
  if (rc != 0 || !fs::exists(fs::path(dir) / "model" / "config.json")) {
    ADD_FAILURE() << "make-example failed (" << rc << "): " << output;
    return false;
  }
  return true;
}

std::vector<std::string> LongJobSubmitArgs(const std::string& dir,
                                           const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"submit",
                                   "--packing",
                                   "off",
                                   "--model",
                                   dir + "/model",
                                   "--train",
                                   dir + "/train.jsonl",
                                   "--task",
                                   "classification",
                                   "--targets",
                                   "q,v",
                                   "--lr-ratio",
                                   "v=4",
                                   "--lr",
                                   "3e-3",
                                   "--dropout",
                                   "0.1",
                                   "--batch-size",
                                   "32",
                                   "--max-seq-len",
                                   "64",
                                   "--max-steps",
                                   "300",
                                   "--checkpoint-every",
                                   "40",
                                   "--seed",
                                   "11"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

void TurnOffModelDropout(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  nlohmann::json config = nlohmann::json::parse(ReadFile(path));
  config["hidden_dropout_prob"] = 0.0;
  config["attention_probs_dropout_prob"] = 0.0;
  std::ofstream(path) << config.dump();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<pid_t> WorkersOf(pid_t parent) {
  std::vector<pid_t> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && stat.substr(open + 1, close - open - 1) == "attune-worker") {
      found.push_back(std::stoi(name));
    }
  }
  return found;
}

pid_t OneWorkerOf(pid_t parent, int timeout_s) {
  for (int i = 0; i < timeout_s * 20; ++i) {
    std::vector<pid_t> workers = WorkersOf(parent);
    if (workers.size() == 1) return workers[0];
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

}  // namespace attune::testing
