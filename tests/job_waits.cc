#include "tests/job_waits.h"

#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace attune::testing {

v1::Job WaitForJob(client::AttuneClient& client, const std::string& id,
                   const std::function<bool(const v1::Job&)>& done, int timeout_s) {
  v1::Job job;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    auto got = client.GetJob(id);
    if (got.ok()) {
      job = *got;
      if (done(job)) return job;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "job " << id << " did not reach the expected condition; last state "
                << v1::JobState_Name(job.state()) << " step " << job.current_step();
  return job;
}

bool IsTerminal(const v1::Job& job) {
  return job.state() == v1::SUCCEEDED || job.state() == v1::FAILED ||
         job.state() == v1::CANCELLED;
}

}  // namespace attune::testing
