// Tenants in the scheduler: fair share between owners at the same priority, and the per-tenant
// limits (max running jobs, max GPUs) that keep jobs QUEUED with the reason in an event.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/scheduler_test_fixture.h"

namespace attune::scheduler {
namespace {

using store::JobState;
using testing_internal::SchedulerTest;
using testing_internal::WaitUntil;

class SchedulerTenantsTest : public SchedulerTest {
 protected:
  std::string SubmitAs(const std::string& owner, const JobSpec& spec) {
    absl::StatusOr<store::Job> job = scheduler_->Submit(spec, "", owner);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? job->id : "";
  }
};

TEST_F(SchedulerTenantsTest, OwnersTakeTurnsAtTheSamePriority) {
  Start({"cpu"}, 1);
  // alpha floods the queue first; beta's one job must not wait behind all of alpha's.
  std::vector<std::string> alpha;
  for (int i = 0; i < 4; ++i) alpha.push_back(SubmitAs("alpha", Spec(1)));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(alpha[0]); }));
  const std::string beta = SubmitAs("beta", Spec(1));
  ASSERT_TRUE(WaitForDispatcherIdle());
  for (const std::string& id : alpha) runner_.Allow(id);
  runner_.Allow(beta);
  for (const std::string& id : alpha) ASSERT_TRUE(WaitForState(id, JobState::kSucceeded));
  ASSERT_TRUE(WaitForState(beta, JobState::kSucceeded));
  EXPECT_EQ(runner_.starts(),
            (std::vector<std::string>{alpha[0], beta, alpha[1], alpha[2], alpha[3]}));
}

TEST_F(SchedulerTenantsTest, PriorityStillComesFirst) {
  Start({"cpu"}, 1);
  const std::string first = SubmitAs("alpha", Spec(1));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(first); }));
  const std::string beta = SubmitAs("beta", Spec(1, /*priority=*/0));
  const std::string urgent = SubmitAs("alpha", Spec(1, /*priority=*/5));
  ASSERT_TRUE(WaitForDispatcherIdle());
  for (const std::string& id : {first, beta, urgent}) runner_.Allow(id);
  ASSERT_TRUE(WaitForState(beta, JobState::kSucceeded));
  EXPECT_EQ(runner_.starts(), (std::vector<std::string>{first, urgent, beta}));
}

TEST_F(SchedulerTenantsTest, OverMaxJobsWaitsQueuedWithTheReason) {
  tenant_limits_ = [](const std::string& owner) {
    return owner == "alpha" ? TenantLimits{1, 0} : TenantLimits{};
  };
  Start({"cpu"}, 3);
  const std::string a1 = SubmitAs("alpha", Spec(1));
  const std::string a2 = SubmitAs("alpha", Spec(1));
  const std::string b1 = SubmitAs("beta", Spec(1));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(a1) && runner_.IsRunning(b1); }));
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_FALSE(runner_.IsRunning(a2));  // a free slot, but alpha is at its limit
  EXPECT_EQ(StateOf(a2), JobState::kQueued);
  ASSERT_TRUE(WaitUntil([&] { return Warnings(a2).size() == 1; }));
  EXPECT_EQ(Warnings(a2),
            std::vector<std::string>{"waiting: tenant 'alpha' runs 1 job(s), its max_jobs is 1"});
  runner_.Allow(a1);
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(a2); }));
  EXPECT_EQ(Warnings(a2).size(), 1u);  // said once
  runner_.Allow(a2);
  runner_.Allow(b1);
  ASSERT_TRUE(WaitForState(a2, JobState::kSucceeded));
}

TEST_F(SchedulerTenantsTest, OverMaxGpusWaitsQueuedWithTheReason) {
  tenant_limits_ = [](const std::string&) { return TenantLimits{0, 1}; };
  Start({"cuda:0", "cuda:1"}, 1);
  const std::string a1 = SubmitAs("alpha", Spec(1, 0, /*gpus=*/1));
  const std::string a2 = SubmitAs("alpha", Spec(1, 0, /*gpus=*/1));
  const std::string b1 = SubmitAs("beta", Spec(1, 0, /*gpus=*/1));
  ASSERT_TRUE(WaitUntil([&] { return runner_.IsRunning(a1) && runner_.IsRunning(b1); }));
  ASSERT_TRUE(WaitForDispatcherIdle());
  EXPECT_EQ(StateOf(a2), JobState::kQueued);
  ASSERT_TRUE(WaitUntil([&] { return Warnings(a2).size() == 1; }));
  EXPECT_EQ(Warnings(a2),
            std::vector<std::string>{"waiting: tenant 'alpha' holds 1 GPU(s), its max_gpus is 1"});
  runner_.Allow(a1);
  runner_.Allow(b1);
  runner_.Allow(a2);
  ASSERT_TRUE(WaitForState(a2, JobState::kSucceeded));
}

}  // namespace
}  // namespace attune::scheduler
