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
  engine::StepMetrics step;
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
  engine::StepMetrics step;
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

}  // namespace
}  // namespace attune::http
