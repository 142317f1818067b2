// A child process that attuned starts and supervises (an attune-worker): started with its output
// appended to a log file, killed with SIGKILL if attuned dies first (PR_SET_PDEATHSIG), polled
// for its end. Linux only.
#ifndef ATTUNE_SERVER_WORKER_CHILD_PROCESS_H_
#define ATTUNE_SERVER_WORKER_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attune::worker {

class ChildProcess {
 public:
  // Starts `binary` with `args` (argv[1..]), stdin /dev/null, stdout and stderr appended to
  // `log_path` (created 0600 if missing), every other descriptor closed and every signal
  // unblocked (attuned blocks the ones it waits for). The child gets SIGKILL when the thread
  // that calls Start ends, so call it from a thread that outlives the child (the job's thread,
  // which waits for it). Errors name the file that could not be opened; a binary that cannot be
  // run shows up as exit status 127 with the reason in the log.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::string& binary,
                                                             const std::vector<std::string>& args,
                                                             const std::string& log_path);

  // Kills (SIGKILL) and reaps the child if it is still running.
  ~ChildProcess();

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // The child's wait status once it has ended, else nullopt. Does not block.
  std::optional<int> Poll();

  // Sends `signal` to the child (nothing once it has been reaped).
  void Signal(int signal);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}

  const pid_t pid_;
  std::optional<int> status_;  // set once reaped
};

// "exited with status 3", "was killed by signal 9 (Killed)".
std::string DescribeWaitStatus(int status);

// The last `lines` lines of the file at `path`, at most `max_bytes` of them (a cut line starts
// with "..."), joined by "\n"; empty when the file is missing or empty.
std::string LastLines(const std::string& path, int lines, size_t max_bytes);

}  // namespace attune::worker

#endif  // ATTUNE_SERVER_WORKER_CHILD_PROCESS_H_
