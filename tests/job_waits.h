// Waiting on jobs for the integration tests; every wait has a deadline, so a hung server fails
// the test in seconds instead of running into ctest's timeout.
#ifndef ATTUNE_TESTS_JOB_WAITS_H_
#define ATTUNE_TESTS_JOB_WAITS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "client/attune_client.h"

namespace attune::testing {

// Polls the job every 100 ms until `done(job)` holds or `timeout_s` passes; returns the last job
// seen, and records a test failure on timeout.
v1::Job WaitForJob(client::AttuneClient& client, const std::string& id,
                   const std::function<bool(const v1::Job&)>& done, int timeout_s);

// WatchJob on the server at `address` with a deadline: calls `on_event` for each event with
// sequence > `from_sequence` until the stream ends, `on_event` returns false (then OK), or
// `timeout_s` passes (DEADLINE_EXCEEDED, and a test failure). Returns the RPC's status. A
// non-empty `token` is sent as `authorization: Bearer TOKEN`.
absl::Status WatchJobFor(const std::string& address, const std::string& id, int64_t from_sequence,
                         int timeout_s, const std::function<bool(const v1::JobEvent&)>& on_event,
                         const std::string& token = "");

// SUCCEEDED, FAILED or CANCELLED.
bool IsTerminal(const v1::Job& job);

}  // namespace attune::testing

#endif  // ATTUNE_TESTS_JOB_WAITS_H_
