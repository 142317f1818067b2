// The worker protocol's conversions give back exactly what went in: every field, the optional
// ones present and absent, doubles bit for bit, and an error's code and message.
#include "server/worker/worker_protocol.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace attune::worker {
namespace {

TEST(WorkerProtocolTest, StepMetricsRoundTrip) {
  StepMetrics step;
  step.step = 7;
  step.total_steps = 300;
  step.epoch = 1.0 / 3.0;
  step.train_loss = std::nextafter(0.7, 1.0);
  step.learning_rates = {{"q.lora_A", 1e-3}, {"v.lora_B", 4e-3}, {"head", 2e-3}};
  step.grad_norm = 0.123456789012345;
  step.tokens_per_second = 5e5;
  step.samples_per_second = 2e4;
  step.tokens = 4096;
  step.samples = 160;
  step.skipped = true;
  step.device_memory = DeviceMemory{1, 2, 3};
  const StepMetrics back = FromWire(ToWire(step));
  EXPECT_EQ(back.step, 7);
  EXPECT_EQ(back.total_steps, 300);
  EXPECT_EQ(back.epoch, step.epoch);
  EXPECT_EQ(back.train_loss, step.train_loss);
  EXPECT_EQ(back.learning_rates, step.learning_rates);
  EXPECT_EQ(back.grad_norm, step.grad_norm);
  EXPECT_EQ(back.tokens_per_second, 5e5);
  EXPECT_EQ(back.samples_per_second, 2e4);
  EXPECT_EQ(back.tokens, 4096);
  EXPECT_EQ(back.samples, 160);
  EXPECT_TRUE(back.skipped);
  ASSERT_TRUE(back.device_memory.has_value());
  EXPECT_EQ(back.device_memory->allocated_bytes, 1);
  EXPECT_EQ(back.device_memory->reserved_bytes, 2);
  EXPECT_EQ(back.device_memory->peak_allocated_bytes, 3);
  step.device_memory.reset();
  EXPECT_FALSE(FromWire(ToWire(step)).device_memory.has_value());
}

TEST(WorkerProtocolTest, EvalMetricsKeepWhichValuesAreSet) {
  EvalMetrics eval;
  eval.step = 40;
  eval.loss = 0.25;
  eval.accuracy = 0.0;  // set, and zero: must not read back as unset
  eval.mcc = -0.5;
  eval.examples = 872;
  const EvalMetrics back = FromWire(ToWire(eval));
  EXPECT_EQ(back.step, 40);
  EXPECT_EQ(back.loss, 0.25);
  EXPECT_EQ(back.accuracy, std::optional<double>(0.0));
  EXPECT_EQ(back.mcc, std::optional<double>(-0.5));
  EXPECT_FALSE(back.f1.has_value());
  EXPECT_FALSE(back.pearson.has_value());
  EXPECT_FALSE(back.spearman.has_value());
  EXPECT_FALSE(back.perplexity.has_value());
  EXPECT_EQ(back.examples, 872);
}

TEST(WorkerProtocolTest, ResultRoundTrip) {
  engine::TrainResult result;
  result.outcome = engine::Outcome::kStopped;
  result.steps = 120;
  result.final_eval = EvalMetrics{120, 0.5, 0.75};
  engine::CheckpointInfo checkpoint;
  checkpoint.step = 120;
  checkpoint.dir = "/d/jobs/a/checkpoints/step-120";
  checkpoint.adapter_bytes = 12345;
  checkpoint.sha256 = "ab";
  checkpoint.eval_metric = 0.75;
  checkpoint.best = true;
  checkpoint.deleted_steps = {40, 80};
  result.final_checkpoint = checkpoint;
  result.total_parameters = 1000;
  result.trainable_parameters = 10;
  result.graph_replays = 3;
  result.stopped_early = "stopped early";
  absl::StatusOr<engine::TrainResult> back = FromWire(ToWire(result));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->outcome, engine::Outcome::kStopped);
  EXPECT_EQ(back->steps, 120);
  ASSERT_TRUE(back->final_eval.has_value());
  EXPECT_EQ(back->final_eval->accuracy, std::optional<double>(0.75));
  ASSERT_TRUE(back->final_checkpoint.has_value());
  EXPECT_EQ(back->final_checkpoint->dir, checkpoint.dir);
  EXPECT_EQ(back->final_checkpoint->adapter_bytes, 12345);
  EXPECT_EQ(back->final_checkpoint->sha256, "ab");
  EXPECT_EQ(back->final_checkpoint->eval_metric, std::optional<double>(0.75));
  EXPECT_TRUE(back->final_checkpoint->best);
  EXPECT_EQ(back->final_checkpoint->deleted_steps, (std::vector<int64_t>{40, 80}));
  EXPECT_EQ(back->total_parameters, 1000);
  EXPECT_EQ(back->trainable_parameters, 10);
  EXPECT_EQ(back->graph_replays, 3);
  EXPECT_EQ(back->stopped_early, "stopped early");
  result.outcome = engine::Outcome::kCompleted;
  EXPECT_EQ(FromWire(ToWire(result))->outcome, engine::Outcome::kCompleted);
}

TEST(WorkerProtocolTest, AFailureKeepsItsCodeAndMessageAndIsNeverOk) {
  const absl::Status bad = absl::InvalidArgumentError("train: data/x.jsonl:7: missing 'label'");
  absl::StatusOr<engine::TrainResult> back = FromWire(ToWire(bad));
  EXPECT_EQ(back.status(), bad);
  wire::Finished odd;
  odd.mutable_failure()->set_code(0);  // OK as a failure's code: read as UNKNOWN, not success
  odd.mutable_failure()->set_message("m");
  EXPECT_EQ(FromWire(odd).status().code(), absl::StatusCode::kUnknown);
  odd.mutable_failure()->set_code(999);
  EXPECT_EQ(FromWire(odd).status().code(), absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace attune::worker
