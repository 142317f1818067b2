#include "server/http/json_views.h"

#include <gtest/gtest.h>

#include <cmath>

namespace attune::http {
namespace {

TEST(JsonViewsTest, DetailCarriesSpecRatiosAndAdapterRatio) {
  JobView job;
  job.id = "j1";
  job.state = "RUNNING";
  job.spec.train.targets = {"q", "v"};
  job.spec.train.lr_ratios = {{"v", 4.0}};
  job.spec.train.task = Task::kSequenceClassification;
  job.adapter_bytes = 50;
  job.base_model_bytes = 1000;
  StepMetrics step;
  step.step = 3;
  step.total_steps = 10;
  step.train_loss = 0.25;
  step.learning_rates = {{"v.lora_A", 4e-4}};
  job.latest_step = step;

  const nlohmann::json json = JobDetailToJson(job);
  EXPECT_EQ(json["id"], "j1");
  EXPECT_EQ(json["state"], "RUNNING");
  EXPECT_EQ(json["spec"]["targets"], nlohmann::json({"q", "v"}));
  EXPECT_EQ(json["spec"]["lrRatios"]["v"], 4.0);
  EXPECT_EQ(json["spec"]["task"], "classification");
  EXPECT_DOUBLE_EQ(json["adapterRatio"].get<double>(), 0.05);
  EXPECT_EQ(json["step"], 3);
  EXPECT_EQ(json["totalSteps"], 10);
  EXPECT_EQ(json["latestStep"]["learningRates"]["v.lora_A"], 4e-4);
}

TEST(JsonViewsTest, NonFiniteLossBecomesNullAndEventsKeepSequence) {
  JobEventView event;
  event.sequence = 9;
  event.type = "step";
  StepMetrics step;
  step.step = 4;
  step.train_loss = std::nan("");
  step.skipped = true;
  event.step = step;
  const nlohmann::json json = EventsToJson("j1", 8, {event});
  EXPECT_EQ(json["nextAfter"], 9);
  EXPECT_EQ(json["events"][0]["sequence"], 9);
  EXPECT_TRUE(json["events"][0]["trainLoss"].is_null());
  EXPECT_EQ(json["events"][0]["skipped"], true);
  EXPECT_EQ(EventsToJson("j1", 8, {})["nextAfter"], 8);
}

TEST(JsonViewsTest, StepEventCarriesTotalStepsAndDeviceMemoryWhenPresent) {
  JobEventView event;
  event.sequence = 3;
  event.type = "step";
  StepMetrics step;
  step.step = 2;
  step.total_steps = 100000;
  step.device_memory = DeviceMemory{1000, 4096, 2000};
  event.step = step;
  const nlohmann::json json = EventToJson(event);
  EXPECT_EQ(json["step"], 2);
  EXPECT_EQ(json["totalSteps"], 100000);
  EXPECT_EQ(json["deviceMemory"],
            nlohmann::json(
                {{"allocatedBytes", 1000}, {"reservedBytes", 4096}, {"peakAllocatedBytes", 2000}}));

  event.step->device_memory.reset();  // the CPU: no device memory, not zeros
  EXPECT_FALSE(EventToJson(event).contains("deviceMemory"));
}

TEST(JsonViewsTest, CheckpointEventCarriesBytesHashAndBest) {
  JobEventView event;
  event.sequence = 4;
  event.type = "checkpoint";
  CheckpointView checkpoint;
  checkpoint.step = 20;
  checkpoint.adapter_bytes = 12345;
  checkpoint.sha256 = std::string(64, 'a');
  checkpoint.best = true;
  event.checkpoint = checkpoint;
  const nlohmann::json json = EventToJson(event);
  EXPECT_EQ(json, nlohmann::json({{"sequence", 4},
                                  {"timeMs", 0},
                                  {"type", "checkpoint"},
                                  {"step", 20},
                                  {"adapterBytes", 12345},
                                  {"sha256", std::string(64, 'a')},
                                  {"best", true}}));
}

}  // namespace
}  // namespace attune::http
