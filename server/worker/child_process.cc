#include "server/worker/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/os_error.h"

namespace attune::worker {
namespace {

// In the forked child, before exec: only async-signal-safe calls (the parent is multithreaded).
[[noreturn]] void ExecChild(pid_t parent, int in_fd, int log_fd, char* const argv[]) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
  dup2(in_fd, STDIN_FILENO);
  dup2(log_fd, STDOUT_FILENO);
  dup2(log_fd, STDERR_FILENO);
  close_range(3, ~0U, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);  // exec keeps an ignored signal ignored
  execv(argv[0], argv);
  static const char kFailed[] = "attune-worker: exec failed\n";
  (void)!write(STDERR_FILENO, kFailed, sizeof(kFailed) - 1);
  _exit(127);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::string& binary, const std::vector<std::string>& args, const std::string& log_path) {
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    const int error = errno;
    return OsError(absl::StrCat("cannot open the worker log ", log_path), error);
  }
  const int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in_fd < 0) {
    const int error = errno;
    close(log_fd);
    return OsError("cannot open /dev/null", error);
  }
  // argv is built before fork: the child may not allocate.
  std::vector<std::string> strings = {binary};
  strings.insert(strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) ExecChild(parent, in_fd, log_fd, argv.data());
  const int fork_errno = errno;
  close(in_fd);
  close(log_fd);
  if (pid < 0) return OsError("cannot start a worker process (fork)", fork_errno);
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid));
}

ChildProcess::~ChildProcess() {
  if (status_.has_value()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

std::optional<int> ChildProcess::Poll() {
  if (status_.has_value()) return status_;
  int status = 0;
  const pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == pid_) status_ = status;
  return status_;
}

void ChildProcess::Signal(int signal) {
  if (!status_.has_value()) kill(pid_, signal);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    const char* name = strsignal(signal);
    return absl::StrCat("was killed by signal ", signal, " (", name != nullptr ? name : "?", ")");
  }
  return absl::StrCat("ended with wait status ", status);
}

std::string LastLines(const std::string& path, int lines, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff from =
      std::max<std::streamoff>(0, size - static_cast<std::streamoff>(max_bytes));
  in.seekg(from);
  std::stringstream tail;
  tail << in.rdbuf();
  std::vector<std::string> all = absl::StrSplit(tail.str(), '\n', absl::SkipWhitespace());
  const size_t first = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  std::vector<std::string> kept(all.begin() + first, all.end());
  if (from > 0 && first == 0 && !kept.empty()) kept.front() = "..." + kept.front();
  return absl::StrJoin(kept, "\n");
}

}  // namespace attune::worker
