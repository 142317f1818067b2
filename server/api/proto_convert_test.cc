#include "server/api/proto_convert.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace attune::api {
namespace {

TEST(JobSpecFromProtoTest, UnsetOptionalFieldsTakeDefaults) {
  v1::JobSpec p;
  p.set_model("/m");
  p.set_task(v1::TASK_SEQUENCE_CLASSIFICATION);
  p.set_train("/t.jsonl");
  auto spec = JobSpecFromProto(p);
  ASSERT_TRUE(spec.ok());
  TrainSpec defaults;
  EXPECT_EQ(spec->train.targets, (std::vector<std::string>{"q", "v"}));
  EXPECT_EQ(spec->train.lora_rank, defaults.lora_rank);
  EXPECT_EQ(spec->train.learning_rate, defaults.learning_rate);
  EXPECT_EQ(spec->train.batch_size, defaults.batch_size);
  EXPECT_EQ(spec->train.max_grad_norm, defaults.max_grad_norm);
  EXPECT_EQ(spec->train.seed, defaults.seed);
}

TEST(JobSpecFromProtoTest, ExplicitZeroIsKeptForValidation) {
  v1::JobSpec p;
  p.mutable_lora()->set_rank(0);
  p.set_learning_rate(0);
  auto spec = JobSpecFromProto(p);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->train.lora_rank, 0);
  EXPECT_EQ(spec->train.learning_rate, 0);
}

// Unset gpus is -1 ("the scheduler picks"); an explicit 0 (a CPU slot) stays 0, and both
// survive the way back to the proto.
TEST(JobSpecFromProtoTest, GpusUnsetIsMinusOneAndExplicitZeroStays) {
  v1::JobSpec unset;
  auto from_unset = JobSpecFromProto(unset);
  ASSERT_TRUE(from_unset.ok());
  EXPECT_EQ(from_unset->gpus, -1);
  EXPECT_FALSE(JobSpecToProto(*from_unset).has_gpus());

  v1::JobSpec zero;
  zero.set_gpus(0);
  auto from_zero = JobSpecFromProto(zero);
  ASSERT_TRUE(from_zero.ok());
  EXPECT_EQ(from_zero->gpus, 0);
  v1::JobSpec back = JobSpecToProto(*from_zero);
  ASSERT_TRUE(back.has_gpus());
  EXPECT_EQ(back.gpus(), 0);

  v1::JobSpec one;
  one.set_gpus(1);
  EXPECT_EQ(JobSpecFromProto(one)->gpus, 1);
}

// Unset ranks is 0 ("the scheduler picks": gpus, or 1 on the CPU) and stays unset on the way
// back; a value given survives both ways.
TEST(JobSpecFromProtoTest, RanksUnsetIsZeroAndAValueGivenStays) {
  v1::JobSpec unset;
  auto from_unset = JobSpecFromProto(unset);
  ASSERT_TRUE(from_unset.ok());
  EXPECT_EQ(from_unset->ranks, 0);
  EXPECT_FALSE(JobSpecToProto(*from_unset).has_ranks());

  v1::JobSpec two;
  two.set_ranks(2);
  auto from_two = JobSpecFromProto(two);
  ASSERT_TRUE(from_two.ok());
  EXPECT_EQ(from_two->ranks, 2);
  v1::JobSpec back = JobSpecToProto(*from_two);
  ASSERT_TRUE(back.has_ranks());
  EXPECT_EQ(back.ranks(), 2);

  // Out of range reaches ValidateJobSpecFields as it was sent, to be refused there.
  v1::JobSpec negative;
  negative.set_ranks(-1);
  EXPECT_EQ(JobSpecFromProto(negative)->ranks, -1);
}

TEST(JobSpecFromProtoTest, UnknownEnumValueNamesTheField) {
  v1::JobSpec p;
  p.set_task(static_cast<v1::Task>(9));
  auto spec = JobSpecFromProto(p);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message(), "task: unknown value 9");
}

TEST(JobSpecProtoTest, RoundTripKeepsEveryField) {
  JobSpec spec;
  spec.train.model_dir = "/m";
  spec.train.task = Task::kCausalLm;
  spec.train.train_path = "/t";
  spec.train.validation_path = "/v";
  spec.train.targets = {"k", "q", "v"};
  spec.train.method = Method::kFull;
  spec.train.lora_rank = 4;
  spec.train.lora_alpha = 8;
  spec.train.lora_dropout = 0.1;
  spec.train.use_rslora = true;
  spec.train.learning_rate = 3e-4;
  spec.train.lr_ratios = {{"v", 4.0}};
  spec.train.loraplus_ratio = 16;
  spec.train.epochs = 3;
  spec.train.max_steps = 100;
  spec.train.batch_size = 8;
  spec.train.max_seq_len = 64;
  spec.train.warmup_steps = 10;
  spec.train.schedule = Schedule::kCosine;
  spec.train.weight_decay = 0.01;
  spec.train.max_grad_norm = 0.5;
  spec.train.seed = 7;
  spec.train.eval_every = 20;
  spec.train.checkpoint_every = 50;
  spec.train.keep_checkpoints = 2;
  spec.gpus = 2;
  spec.ranks = 2;
  spec.priority = 5;
  spec.max_retries = 0;
  spec.name = "n";
  spec.labels = {{"a", "b"}};
  auto back = JobSpecFromProto(JobSpecToProto(spec));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(JobSpecToJson(*back), JobSpecToJson(spec));
  EXPECT_EQ(back->max_retries, 0);
  // Unset in the request: the default.
  v1::JobSpec unset = JobSpecToProto(spec);
  unset.clear_max_retries();
  EXPECT_EQ(JobSpecFromProto(unset)->max_retries, 2);
  spec.train.method = Method::kDora;
  EXPECT_EQ(JobSpecToProto(spec).method(), v1::METHOD_DORA);
  back = JobSpecFromProto(JobSpecToProto(spec));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->train.method, Method::kDora);
}

TEST(JobEventToProtoTest, MapsMetricsAndTerminalState) {
  store::JobEvent e;
  e.job_id = "j";
  e.sequence = 4;
  e.type = store::EventType::kMetrics;
  e.step = 3;
  e.step_metrics = StepMetrics{};
  e.step_metrics->train_loss = 0.5;
  e.step_metrics->learning_rates = {{"v.lora_A", 4e-4}};
  e.step_metrics->total_steps = 10;
  e.step_metrics->epoch = 0.3;
  v1::JobEvent p = JobEventToProto(e);
  EXPECT_EQ(p.sequence(), 4);
  ASSERT_TRUE(p.has_step());
  EXPECT_EQ(p.step().step(), 3);
  EXPECT_EQ(p.step().total_steps(), 10);
  EXPECT_DOUBLE_EQ(p.step().train_loss(), 0.5);
  EXPECT_DOUBLE_EQ(p.step().learning_rates().at("v.lora_A"), 4e-4);

  store::JobEvent eval;
  eval.type = store::EventType::kEval;
  eval.eval = EvalMetrics{};
  eval.eval->loss = 0.2;
  eval.eval->accuracy = 0.9;
  v1::JobEvent pe = JobEventToProto(eval);
  EXPECT_DOUBLE_EQ(pe.eval().accuracy(), 0.9);
  EXPECT_FALSE(pe.eval().has_pearson());

  store::JobEvent done;
  done.type = store::EventType::kStateChanged;
  done.state = store::JobState::kSucceeded;
  EXPECT_EQ(JobEventToProto(done).state_change().state(), v1::SUCCEEDED);

  store::JobEvent running;
  running.type = store::EventType::kStateChanged;
  running.state = store::JobState::kRunning;
  running.devices = {"cuda:1"};
  EXPECT_THAT(JobEventToProto(running).state_change().devices(), testing::ElementsAre("cuda:1"));

  store::JobEvent checkpoint;
  checkpoint.type = store::EventType::kCheckpoint;
  checkpoint.best = true;
  EXPECT_TRUE(JobEventToProto(checkpoint).checkpoint().best());
}

// Job.metrics (the flat map) and latest_step/latest_eval come from the same typed values.
TEST(JobToProtoTest, LatestMetricsTypedAndFlat) {
  store::Job job;
  job.last_step = 7;
  job.latest_step = StepMetrics{};
  job.latest_step->step = 7;
  job.latest_step->train_loss = 0.25;
  job.latest_step->learning_rates = {{"v.lora_B", 8e-4}};
  job.latest_eval = EvalMetrics{};
  job.latest_eval->step = 5;
  job.latest_eval->loss = 0.5;
  job.latest_eval->accuracy = 0.75;
  v1::Job p = JobToProto(job);
  EXPECT_EQ(p.latest_step().step(), 7);
  EXPECT_DOUBLE_EQ(p.latest_step().train_loss(), 0.25);
  EXPECT_EQ(p.latest_eval().step(), 5);
  EXPECT_DOUBLE_EQ(p.latest_eval().accuracy(), 0.75);
  EXPECT_DOUBLE_EQ(p.metrics().at("train_loss"), 0.25);
  EXPECT_DOUBLE_EQ(p.metrics().at("lr.v.lora_B"), 8e-4);
  EXPECT_DOUBLE_EQ(p.metrics().at("eval_accuracy"), 0.75);
  EXPECT_FALSE(JobToProto(store::Job{}).has_latest_step());
}

}  // namespace
}  // namespace attune::api
