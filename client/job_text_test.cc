#include "client/job_text.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace attune::client {
namespace {

TEST(HumanBytesTest, BinaryUnits) {
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(1258291), "1.2 MiB");
  EXPECT_EQ(HumanBytes(476LL * 1024 * 1024), "476 MiB");
  EXPECT_EQ(HumanBytes(3LL * 1024 * 1024 * 1024), "3.0 GiB");
}

TEST(StorageSummaryTest, SaysRatioInWords) {
  v1::Job job;
  EXPECT_EQ(StorageSummary(job), "");
  job.set_adapter_bytes(1258291);                 // 1.2 MiB
  job.set_base_model_bytes(476LL * 1024 * 1024);  // 476 MiB
  EXPECT_EQ(StorageSummary(job), "adapter 1.2 MiB, 0.25% of the 476 MiB base model");
}

TEST(StepProgressTextTest, ShowsStepLossAndEta) {
  v1::JobEvent::StepMetrics step;
  step.set_step(5);
  step.set_total_steps(10);
  step.set_train_loss(0.5);
  EXPECT_EQ(StepProgressText(step, 65), "5/10 loss 0.5000 ETA 1:05");
  EXPECT_EQ(StepProgressText(step, -1), "5/10 loss 0.5000");
}

TEST(EventLineTest, StateChange) {
  v1::JobEvent event;
  event.set_sequence(3);
  event.mutable_state_change()->set_state(v1::FAILED);
  event.mutable_state_change()->set_message("train: x.jsonl:2: missing 'label'");
  EXPECT_EQ(EventLine(event), "#3 state FAILED: train: x.jsonl:2: missing 'label'");
}

TEST(EventLineTest, RunningSaysOnWhichDevices) {
  v1::JobEvent event;
  event.set_sequence(2);
  event.mutable_state_change()->set_state(v1::RUNNING);
  event.mutable_state_change()->add_devices("cuda:0");
  EXPECT_EQ(EventLine(event), "#2 state RUNNING on cuda:0");
  event.mutable_state_change()->set_devices(0, "cpu");
  EXPECT_EQ(EventLine(event), "#2 state RUNNING on cpu");
}

// The lines of `attune get` that start with `prefix` (with the two-space indent).
std::vector<std::string> SummaryLines(const v1::Job& job, const std::string& prefix) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(JobSummary(job), '\n')) {
    if (absl::StartsWith(line, prefix)) lines.emplace_back(line);
  }
  return lines;
}

TEST(JobSummaryTest, SaysWhichDevicesTheJobRunsOn) {
  v1::Job job;
  job.set_id("job-000001");
  job.set_state(v1::RUNNING);
  job.add_devices("cuda:0");
  EXPECT_EQ(SummaryLines(job, "  devices"),
            std::vector<std::string>{"  devices   running on cuda:0"});
  job.set_state(v1::SUCCEEDED);
  job.set_devices(0, "cpu");
  EXPECT_EQ(SummaryLines(job, "  devices"), std::vector<std::string>{"  devices   ran on cpu"});
  job.clear_devices();
  job.set_state(v1::QUEUED);
  EXPECT_EQ(SummaryLines(job, "  devices"), std::vector<std::string>{});
}

TEST(JobSummaryTest, QueuedJobShowsTrainableOfTotalParameters) {
  v1::Job job;
  job.set_id("job-000002");
  job.set_state(v1::QUEUED);
  job.set_trainable_parameters(1024);
  job.set_total_parameters(102400);
  EXPECT_EQ(SummaryLines(job, "  params"),
            std::vector<std::string>{"  params    1024 trainable of 102400 (1.00%)"});
}

TEST(ToJsonTest, UsesProto3Mapping) {
  v1::Job job;
  job.set_id("j-1");
  job.set_state(v1::RUNNING);
  job.set_current_step(12);
  EXPECT_EQ(ToJson(job), R"({"id":"j-1","state":"RUNNING","currentStep":"12"})");
}

}  // namespace
}  // namespace attune::client
