// `attune checkpoints ID` and `attune delete ID`: a job's checkpoints as a table (or the
// ListCheckpoints answer as JSON), and deleting a finished job with its files on the server.
//
// Each command prints its result to `out` and returns the RPC's status; main.cc turns a non-OK
// status into the message and exit code every command uses (kExitCodes).
#ifndef ATTUNE_CLIENT_LIFECYCLE_COMMANDS_H_
#define ATTUNE_CLIENT_LIFECYCLE_COMMANDS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "attune/v1/attune.pb.h"
#include "client/attune_client.h"

namespace attune::client {

// How a command prints its result (--output).
enum class ResultFormat {
  kText,  // for people
  kJson,  // the proto3 JSON mapping of the response, on one line
};

// The checkpoints table: one row per checkpoint, ascending by step, with columns STEP,
// TRAIN_LOSS, the eval metric (named by response.eval_metric(), e.g. ACCURACY), BEST ("*" on
// the best row), BYTES and SHA256 (its first 12 hex digits); "-" where a value is unknown.
// Ends with a newline; "no checkpoints yet\n" when there are none. Pure.
std::string CheckpointsTable(const v1::ListCheckpointsResponse& response);

// ListCheckpoints(job_id), printed as CheckpointsTable or as JSON.
absl::Status RunCheckpoints(AttuneClient& client, const std::string& job_id, ResultFormat format,
                            std::ostream& out);

// DeleteJob(job_id); prints "deleted ID (freed 1.2 MiB)" or the response as JSON.
absl::Status RunDelete(AttuneClient& client, const std::string& job_id, ResultFormat format,
                       std::ostream& out);

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_LIFECYCLE_COMMANDS_H_
