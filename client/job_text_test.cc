#include "client/job_text.h"

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
  job.set_adapter_bytes(1258291);               // 1.2 MiB
  job.set_base_model_bytes(476LL * 1024 * 1024);  // 476 MiB
  EXPECT_EQ(StorageSummary(job), "adapter 1.2 MiB, 0.25% of the 476 MiB base model");
}

TEST(ProgressBarTest, ShowsStepLossAndEta) {
  EXPECT_EQ(ProgressBar(5, 10, 0.5, 65, 10), "[#####.....] 5/10 loss 0.5000 ETA 1:05");
  EXPECT_EQ(ProgressBar(0, 0, 0, -1, 4), "[....] 0/0 loss 0.0000");
}

TEST(EventLineTest, StateChange) {
  v1::JobEvent event;
  event.set_sequence(3);
  event.mutable_state_change()->set_state(v1::FAILED);
  event.mutable_state_change()->set_message("train: x.jsonl:2: missing 'label'");
  EXPECT_EQ(EventLine(event), "#3 state FAILED: train: x.jsonl:2: missing 'label'");
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
