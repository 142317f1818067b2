// The commands of `attune` that act on one job or list jobs (list, get, cancel, pause, resume,
// watch, download, health), and the exit codes every command shares. main.cc parses the command
// line and calls these; each prints its result to stdout (errors to stderr) and returns the
// process's exit code.
//
// Exit codes: 0 success; 1 other errors (and `watch` of a job that FAILED or was CANCELLED);
// 2 usage errors and INVALID_ARGUMENT; 3 NOT_FOUND; 4 server unavailable.
#ifndef ATTUNE_CLIENT_JOB_COMMANDS_H_
#define ATTUNE_CLIENT_JOB_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "attune/v1/attune.pb.h"
#include "client/adapter_download.h"
#include "client/attune_client.h"

namespace attune::client {

// How results are printed (--output).
enum class OutputFormat {
  kText,  // for people; progress bars on a terminal
  kJson,  // the proto3 JSON mapping, one object per line
  kCsv,   // `compare` only: one row per configuration
};

struct ListOptions {
  std::string state;                // "" = every state, else a JobState name
  int page_size = 0;                // jobs per request; 0 = the server's default
  std::vector<std::string> labels;  // "key=value" each; only jobs with all of them
};
struct WatchOptions {
  std::string job_id;
  int64_t from_sequence = 0;  // only events after this sequence
};

// The exit code for `status` (above).
int ExitCodeFor(const absl::Status& status);

// Prints "attune: CODE: message" to stderr and returns ExitCodeFor(status).
int Fail(const absl::Status& status);

// 0 for OK; otherwise prints the error as Fail does and returns its exit code.
int Finish(const absl::Status& status);

// Lists every page of jobs: a line each, or one JSON object per line.
int RunList(AttuneClient& client, const ListOptions& options, OutputFormat format);

// One job: its summary, or its JSON.
int RunGet(AttuneClient& client, const std::string& job_id, OutputFormat format);

// cancel, pause and resume: prints the job as the server returned it ("ID STATE", or JSON).
int RunJobChange(const absl::StatusOr<v1::Job>& job, OutputFormat format);

// Follows a job, with a progress bar on a terminal. 0 when the job SUCCEEDED, 1 when it failed
// or was cancelled.
int RunWatch(AttuneClient& client, const WatchOptions& options, OutputFormat format);

// Downloads with a progress bar on stderr when it is a terminal (stdout keeps the result).
int RunDownload(AttuneClient& client, DownloadOptions options, OutputFormat format);

// grpc.health.v1: prints the state; 0 when SERVING.
int RunHealth(AttuneClient& client, const std::string& service);

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_JOB_COMMANDS_H_
