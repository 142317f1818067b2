// Waiting on jobs through the client library, for the integration tests.
#ifndef ATTUNE_TESTS_JOB_WAITS_H_
#define ATTUNE_TESTS_JOB_WAITS_H_

#include <functional>
#include <string>

#include "client/attune_client.h"

namespace attune::testing {

// Polls the job every 100 ms until `done(job)` holds or `timeout_s` passes; returns the last job
// seen, and records a test failure on timeout.
v1::Job WaitForJob(client::AttuneClient& client, const std::string& id,
                   const std::function<bool(const v1::Job&)>& done, int timeout_s);

// SUCCEEDED, FAILED or CANCELLED.
bool IsTerminal(const v1::Job& job);

}  // namespace attune::testing

#endif  // ATTUNE_TESTS_JOB_WAITS_H_
