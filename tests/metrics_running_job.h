// Shared setup for the metrics and dashboard integration tests: the real `attuned` with
// `--http 127.0.0.1:0`, the example model, and one long example job (targets q,v, v=4) that is
// running and has reported steps. The tests run promtool, prometheus and chromium through
// ChildProcess and RunProgram (tests/attuned_process.h).
//
// Not thread-safe; one test thread.
#ifndef ATTUNE_TESTS_METRICS_RUNNING_JOB_H_
#define ATTUNE_TESTS_METRICS_RUNNING_JOB_H_

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/attuned_process.h"

namespace attune::testing {

// GET http://<host_port><path>; returns the body, or "" with `*status` = -1 when the request
// failed. `status` may be null.
std::string HttpGet(const std::string& host_port, const std::string& path, int* status = nullptr);

class RunningJobTest : public ::testing::Test {
 protected:
  // Makes the example, starts attuned with --http, submits a 100000-step job evaluating every
  // 5 steps and checkpointing every 20, and waits (up to 30 s) until /metrics shows its train
  // loss.
  void SetUp() override;
  // Cancels the job (so the server stops quickly).
  void TearDown() override;

  TempDir dir_;
  std::string example_;
  std::unique_ptr<AttunedProcess> server_;
  std::string job_id_;
};

}  // namespace attune::testing

#endif  // ATTUNE_TESTS_METRICS_RUNNING_JOB_H_
