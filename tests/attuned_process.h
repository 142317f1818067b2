// Test helpers that run the real binaries: an `attuned` child process on a free port with its
// own temporary data directory, and the `attune` CLI.
//
// The paths of the binaries come from compile definitions set in tests/CMakeLists.txt
// (ATTUNED_PATH, ATTUNE_CLI_PATH, ATTUNE_MAKE_EXAMPLE_PATH). Not thread-safe; one test thread.
#ifndef ATTUNE_TESTS_ATTUNED_PROCESS_H_
#define ATTUNE_TESTS_ATTUNED_PROCESS_H_

#include <sys/types.h>

#include <string>
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

class AttunedProcess {
 public:
  // Starts attuned with `--listen 127.0.0.1:0 --data-dir <data_dir> --devices cpu` plus
  // `extra_args`, and waits (up to 60 s) for its "attuned listening on HOST:PORT" line. The
  // server's stderr goes to <data_dir>/../attuned-<n>.log. Aborts the test (ADD_FAILURE and
  // address() empty) when the line does not come.
  AttunedProcess(const std::string& data_dir, const std::vector<std::string>& extra_args);
  // Sends SIGKILL if still running and reaps the process.
  ~AttunedProcess();

  // "127.0.0.1:PORT" as printed; empty if the server did not start.
  const std::string& address() const { return address_; }
  // The --http address as printed ("attuned http on HOST:PORT"); empty without --http.
  const std::string& http_address() const { return http_address_; }
  pid_t pid() const { return pid_; }
  // The server's stderr so far.
  std::string Log() const;

  // Sends `signal` and waits up to `timeout_s` for the process to exit. Returns its exit code
  // (128 + signal when killed by a signal), or -1 on timeout.
  int StopWith(int signal, int timeout_s);

 private:
  pid_t pid_ = -1;
  std::string address_;
  std::string http_address_;
  std::string log_path_;
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

// Reads a whole file ("" if missing).
std::string ReadFile(const std::string& path);

}  // namespace attune::testing

#endif  // ATTUNE_TESTS_ATTUNED_PROCESS_H_
