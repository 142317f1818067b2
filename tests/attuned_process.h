// The one harness through which tests run other programs: ChildProcess (fork + execv, every wait
// bounded), and on top of it an `attuned` child process on a free port with its own temporary
// data directory, the `attune` CLI, and short-lived tools (promtool, attune-make-example).
//
// The paths of the binaries come from compile definitions set in tests/CMakeLists.txt
// (ATTUNED_PATH, ATTUNE_CLI_PATH, ATTUNE_MAKE_EXAMPLE_PATH). Not thread-safe; one test thread.
#ifndef ATTUNE_TESTS_ATTUNED_PROCESS_H_
#define ATTUNE_TESTS_ATTUNED_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace attune::testing {

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Where a child's standard streams go.
struct ChildOptions {
  // Appended to; stderr_path "" = the same file as stdout.
  std::string stdout_path = "/dev/null";
  std::string stderr_path;
  // Stdout to a pipe instead, read through ChildProcess::stdout_fd().
  bool pipe_stdout = false;
  // Stdin from a pipe, written through ChildProcess::stdin_fd(); else /dev/null.
  bool pipe_stdin = false;
  // {child fd, parent fd} pairs dup2'ed into the child (e.g. DevTools pipes).
  std::vector<std::pair<int, int>> extra_fds;
};

// A program started with fork + execv(argv[0], argv). The destructor sends SIGTERM, then SIGKILL
// after 10 s, and reaps it. An exec failure shows as exit code 127.
class ChildProcess {
 public:
  // Stdout and stderr appended to `log_path`.
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path);
  ChildProcess(const std::vector<std::string>& argv, const ChildOptions& options);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // -1 when fork failed or after the process was reaped.
  pid_t pid() const { return pid_; }
  // The parent's ends of the pipes (-1 without them); owned by this object.
  int stdout_fd() const { return stdout_fd_; }
  int stdin_fd() const { return stdin_fd_; }
  // Closes the stdin pipe (the child sees end of file).
  void CloseStdin();

  // Waits up to `timeout_s` for the process to exit. Returns its exit code (128 + signal when
  // killed by one), or -1 on timeout (it keeps running) or when there is no process.
  int Wait(int timeout_s);
  // Sends `signal`, then Wait(timeout_s).
  int StopWith(int signal, int timeout_s);

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stdin_fd_ = -1;
};

// Runs `argv` with `stdin_text` on its standard input and returns its exit code (or -1 when it
// could not run or took longer than `timeout_s`, then it is killed); stdout and stderr together
// go to `*output`.
int RunProgram(const std::vector<std::string>& argv, const std::string& stdin_text,
               std::string* output, int timeout_s = 60);

class AttunedProcess {
 public:
  // Starts attuned with `--listen 127.0.0.1:0 --data-dir <data_dir> --devices cpu` plus
  // `extra_args`, and waits (up to 60 s) for its "attuned listening on HOST:PORT" line. The
  // server's stderr goes to <data_dir>/../attuned-<n>.log. Aborts the test (ADD_FAILURE and
  // address() empty) when the line does not come.
  AttunedProcess(const std::string& data_dir, const std::vector<std::string>& extra_args);
  // Starts exactly `argv` (argv[0] the attuned binary, nothing added) the same way, with its
  // stderr appended to `log_path`: how the deploy tests run what a container runtime would.
  static std::unique_ptr<AttunedProcess> StartExact(const std::vector<std::string>& argv,
                                                    const std::string& log_path);
  // Sends SIGKILL if still running and reaps the process.
  ~AttunedProcess();

  // HOST:PORT as printed ("127.0.0.1:PORT"); empty if the server did not start.
  const std::string& address() const { return address_; }
  // The --http address as printed ("attuned http on HOST:PORT"); empty without --http.
  const std::string& http_address() const { return http_address_; }
  pid_t pid() const { return child_->pid(); }
  // The server's stderr so far.
  std::string Log() const;

  // Sends `signal` and waits up to `timeout_s` for the process to exit. Returns its exit code
  // (128 + signal when killed by a signal), or -1 on timeout.
  int StopWith(int signal, int timeout_s);

 private:
  AttunedProcess(const std::vector<std::string>& argv, std::string log_path);
  // Reads stdout up to the "attuned listening on" line (60 s at most) and parses it.
  void ReadStartLines();

  std::string log_path_;
  std::unique_ptr<ChildProcess> child_;
  std::string address_;
  std::string http_address_;
};

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `attune --server <server> <args...>` and waits for it, up to `timeout_s`.
CliResult RunCli(const std::string& server, const std::vector<std::string>& args,
                 int timeout_s = 120);

// Writes the example assets (model/, train.jsonl, validation.jsonl) into `dir` with
// attune-make-example. Returns false (with a test failure) when that fails.
bool MakeExample(const std::string& dir);

// `attune submit` of the example job in `dir` (as MakeExample wrote it): its model, train and
// validation files, classification on q,v with v=4 and seed 7, followed by `extra`.
std::vector<std::string> ExampleSubmitArgs(const std::string& dir,
                                           const std::vector<std::string>& extra = {});

// The attune-worker processes whose parent is `parent` (an attuned), from /proc/*/stat.
std::vector<pid_t> WorkersOf(pid_t parent);
// Waits up to `timeout_s` for `parent` to have exactly one worker and returns it; 0 if none came.
pid_t OneWorkerOf(pid_t parent, int timeout_s);

// `attune submit` args of the example in `dir` as a job long enough to be killed or paused in
// the middle (300 steps, a checkpoint every 40, packing off), with dropout so that resuming
// must restore the random generator too; `extra` appended.
std::vector<std::string> LongJobSubmitArgs(const std::string& dir,
                                           const std::vector<std::string>& extra = {});

// Sets the dropout of the model in `model_dir` (config.json) to 0: with dropout, each
// data-parallel rank draws its own masks, which one process of the whole batch does not.
void TurnOffModelDropout(const std::string& model_dir);

// Reads a whole file ("" if missing).
std::string ReadFile(const std::string& path);

}  // namespace attune::testing

#endif  // ATTUNE_TESTS_ATTUNED_PROCESS_H_
