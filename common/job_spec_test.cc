#include "common/job_spec.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace attune {
namespace {

JobSpec Valid() {
  JobSpec spec;
  spec.train.model_dir = "/models/tiny";
  spec.train.task = Task::kSequenceClassification;
  spec.train.train_path = "/data/train.jsonl";
  spec.train.targets = {"q", "v"};
  return spec;
}

TEST(JobSpecTest, JsonRoundTripKeepsEveryField) {
  JobSpec spec = Valid();
  TrainSpec& t = spec.train;
  t.validation_path = "/data/val.jsonl";
  t.method = Method::kFull;
  t.lora_rank = 4;
  t.lora_alpha = 8;
  t.lora_dropout = 0.1;
  t.use_rslora = true;
  t.learning_rate = 3e-4;
  t.lr_ratios = {{"v", 2}};
  t.loraplus_ratio = 16;
  t.epochs = 2;
  t.max_steps = 7;
  t.batch_size = 4;
  t.max_seq_len = 64;
  t.warmup_steps = 3;
  t.schedule = Schedule::kCosine;
  t.weight_decay = 0.01;
  t.max_grad_norm = 0.5;
  t.seed = 9;
  t.eval_every = 5;
  t.checkpoint_every = 6;
  t.keep_checkpoints = 2;
  t.eval_metric = EvalMetric::kMcc;
  t.early_stopping_patience = 4;
  spec.name = "n";
  spec.labels = {{"k", "v"}};
  spec.gpus = 1;
  spec.ranks = 1;
  spec.priority = 3;
  spec.max_retries = 5;
  absl::StatusOr<JobSpec> back = JobSpecFromJson(JobSpecToJson(spec));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(JobSpecToJson(*back), JobSpecToJson(spec));
  EXPECT_EQ(back->train.schedule, Schedule::kCosine);
  EXPECT_EQ(back->gpus, 1);
  EXPECT_EQ(back->ranks, 1);
  EXPECT_EQ(back->train.eval_metric, EvalMetric::kMcc);
  EXPECT_EQ(back->train.early_stopping_patience, 4);
  EXPECT_EQ(back->max_retries, 5);
  // A row stored before max_retries existed gets the default.
  EXPECT_EQ(JobSpecFromJson("{}")->max_retries, 2);
  // A row stored before eval_metric existed reads back as unspecified (the task's default).
  EXPECT_EQ(JobSpecFromJson("{}")->train.eval_metric, EvalMetric::kUnspecified);
  EXPECT_EQ(JobSpecFromJson("{}")->train.early_stopping_patience, 0);
  // A row stored before ranks existed reads back unset (0), which the scheduler reads as 1 on
  // the CPU and as gpus on GPUs.
  EXPECT_EQ(JobSpecFromJson("{}")->ranks, 0);
  EXPECT_EQ(JobSpecFromJson(R"({"ranks": 3})")->ranks, 3);
}

TEST(JobSpecTest, JsonErrorsAreInvalidArgument) {
  EXPECT_EQ(JobSpecFromJson("[1]").status().message(), "job spec: not a JSON object");
  absl::Status bad_task = JobSpecFromJson(R"({"task": "translate"})").status();
  EXPECT_EQ(bad_task.code(), absl::StatusCode::kInvalidArgument);
  absl::Status wrong_type = JobSpecFromJson(R"({"epochs": "two"})").status();
  EXPECT_EQ(wrong_type.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong_type.message().substr(0, 10), "job spec: ");
  // A spec stored without gpus (or by a client that did not say) leaves the choice open.
  EXPECT_EQ(JobSpecFromJson("{}")->gpus, -1);
}

TEST(JobSpecTest, ValueRatioDefaultIsFourOnlyForLoraOnExactlyQandV) {
  JobSpec qv = Valid();
  ApplyJobSpecDefaults(&qv);
  EXPECT_EQ(qv.train.lr_ratios, (std::map<std::string, double>{{"v", 4.0}}));
  JobSpec own = Valid();
  own.train.lr_ratios = {{"v", 1.0}};
  ApplyJobSpecDefaults(&own);
  EXPECT_EQ(own.train.lr_ratios, (std::map<std::string, double>{{"v", 1.0}}));
  JobSpec qkv = Valid();
  qkv.train.targets = {"q", "k", "v"};
  ApplyJobSpecDefaults(&qkv);
  EXPECT_TRUE(qkv.train.lr_ratios.empty());
  JobSpec full = Valid();
  full.train.method = Method::kFull;
  ApplyJobSpecDefaults(&full);
  EXPECT_TRUE(full.train.lr_ratios.empty());
}

TEST(JobSpecTest, EvalMetricDefaultsByTask) {
  JobSpec classification = Valid();
  ApplyJobSpecDefaults(&classification);
  EXPECT_EQ(classification.train.eval_metric, EvalMetric::kAccuracy);
  JobSpec regression = Valid();
  regression.train.task = Task::kRegression;
  ApplyJobSpecDefaults(&regression);
  EXPECT_EQ(regression.train.eval_metric, EvalMetric::kPearson);
  JobSpec lm = Valid();
  lm.train.task = Task::kCausalLm;
  ApplyJobSpecDefaults(&lm);
  EXPECT_EQ(lm.train.eval_metric, EvalMetric::kLoss);
  JobSpec own = Valid();
  own.train.eval_metric = EvalMetric::kMcc;
  ApplyJobSpecDefaults(&own);
  EXPECT_EQ(own.train.eval_metric, EvalMetric::kMcc);
}

TEST(JobSpecTest, DoraMethodParsesPrintsAndRoundTrips) {
  EXPECT_EQ(ParseMethod("dora").value(), Method::kDora);
  EXPECT_EQ(MethodName(Method::kDora), "dora");
  EXPECT_EQ(MethodName(Method::kLora), "lora");
  EXPECT_EQ(MethodName(Method::kFull), "full");
  absl::Status unknown = ParseMethod("qlora").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.message(), "method: unknown method 'qlora'; expected one of lora, full, dora");
  JobSpec spec = Valid();
  spec.train.method = Method::kDora;
  absl::StatusOr<JobSpec> back = JobSpecFromJson(JobSpecToJson(spec));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->train.method, Method::kDora);
  // DoRA reads the LoRA fields, so they are checked for it too.
  spec.train.lora_rank = 0;
  EXPECT_EQ(ValidateJobSpecFields(spec).message(),
            "lora.rank: 0 is out of range; expected 1..4096");
  // And it gets the seed paper's value ratio on exactly q and v, as LoRA does.
  JobSpec qv = Valid();
  qv.train.method = Method::kDora;
  ApplyJobSpecDefaults(&qv);
  EXPECT_EQ(qv.train.lr_ratios, (std::map<std::string, double>{{"v", 4.0}}));
}

// One case per check, each with its exact message.
TEST(JobSpecTest, ValidationNamesTheFieldAndWhatIsAllowed) {
  EXPECT_TRUE(ValidateJobSpecFields(Valid()).ok());
  struct Case {
    void (*edit)(JobSpec&);
    const char* message;
  } cases[] = {
      {[](JobSpec& s) { s.train.model_dir.clear(); },
       "model: required; the path of a Hugging Face model directory"},
      {[](JobSpec& s) {
         s.train.targets = {"q", "x"};
       },
       "targets: unknown projection 'x'; expected any of q,k,v,o,gate,up,down"},
      {[](JobSpec& s) {
         s.train.targets = {"q", "q"};
       },
       "targets: projection 'q' given twice"},
      {[](JobSpec& s) { s.train.lora_rank = 0; }, "lora.rank: 0 is out of range; expected 1..4096"},
      {[](JobSpec& s) { s.train.lora_alpha = std::numeric_limits<double>::infinity(); },
       "lora.alpha: inf must be a finite number in (0, 1e6]"},
      {[](JobSpec& s) { s.train.lora_alpha = 1e308; },
       "lora.alpha: 1e+308 must be a finite number in (0, 1e6]"},
      {[](JobSpec& s) {
         s.train.lr_ratios = {{"k", 2}};
       },
       "lr_ratios: projection 'k' is not among the targets (q,v)"},
      {[](JobSpec& s) {
         s.train.lr_ratios = {{"v", 0}};
       },
       "lr_ratios: ratio for 'v' is 0; expected a number in (0, 1000]"},
      {[](JobSpec& s) { s.train.lora_dropout = std::nan(""); },
       "lora.dropout: nan must be in [0, 1)"},
      {[](JobSpec& s) { s.train.learning_rate = std::numeric_limits<double>::infinity(); },
       "learning_rate: inf must be in (0, 10]"},
      {[](JobSpec& s) { s.train.learning_rate = std::nan(""); },
       "learning_rate: nan must be in (0, 10]"},
      {[](JobSpec& s) {
         s.train.lr_ratios = {{"v", std::numeric_limits<double>::infinity()}};
       },
       "lr_ratios: ratio for 'v' is inf; expected a number in (0, 1000]"},
      {[](JobSpec& s) { s.train.loraplus_ratio = std::nan(""); },
       "loraplus_ratio: nan must be in (0, 1000]"},
      {[](JobSpec& s) { s.train.batch_size = 0; }, "batch_size: 0 must be in 1..65536"},
      {[](JobSpec& s) { s.train.weight_decay = std::nan(""); },
       "weight_decay: nan must be a finite number in [0, 10]"},
      {[](JobSpec& s) { s.train.weight_decay = 1e308; },
       "weight_decay: 1e+308 must be a finite number in [0, 10]"},
      {[](JobSpec& s) { s.train.max_grad_norm = std::numeric_limits<double>::infinity(); },
       "max_grad_norm: inf must be a finite number in [0, 1e6] (0 = off)"},
      {[](JobSpec& s) { s.train.max_grad_norm = 1e308; },
       "max_grad_norm: 1e+308 must be a finite number in [0, 1e6] (0 = off)"},
      {[](JobSpec& s) { s.train.keep_checkpoints = 0; }, "keep_checkpoints: 0 must be >= 1"},
      {[](JobSpec& s) { s.gpus = -2; }, "gpus: -2 must be in 0..64 (or unset)"},
      {[](JobSpec& s) { s.ranks = -1; }, "ranks: -1 must be in 1..64 (or unset)"},
      {[](JobSpec& s) { s.ranks = 65; }, "ranks: 65 must be in 1..64 (or unset)"},
      {[](JobSpec& s) { s.max_retries = -1; }, "max_retries: -1 must be in 0..100"},
      {[](JobSpec& s) { s.max_retries = 101; }, "max_retries: 101 must be in 0..100"},
      {[](JobSpec& s) {
         s.train.task = Task::kRegression;
         s.train.eval_metric = EvalMetric::kMcc;
       },
       "eval_metric: 'mcc' does not apply to regression; expected pearson, spearman, loss"},
      {[](JobSpec& s) { s.train.eval_metric = EvalMetric::kSpearman; },
       "eval_metric: 'spearman' does not apply to classification; expected accuracy, f1, mcc, "
       "loss"},
      {[](JobSpec& s) {
         s.train.task = Task::kCausalLm;
         s.train.eval_metric = EvalMetric::kAccuracy;
       },
       "eval_metric: 'accuracy' does not apply to causal-lm; expected loss"},
      {[](JobSpec& s) { s.train.early_stopping_patience = -1; },
       "early_stopping_patience: -1 must be in 0..1000000 (0 = off)"},
      {[](JobSpec& s) { s.train.early_stopping_patience = 2; },
       "early_stopping_patience: needs a validation set; set validation or leave it at 0"},
  };
  for (const Case& c : cases) {
    JobSpec spec = Valid();
    c.edit(spec);
    absl::Status status = ValidateJobSpecFields(spec);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(status.message(), c.message);
  }
}

// ranks: unset (0) and 1..64 pass; the scheduler resolves and checks it against the devices.
TEST(JobSpecTest, RanksUnsetOrOneToSixtyFourIsValid) {
  for (int ranks : {0, 1, 2, 64}) {
    JobSpec spec = Valid();
    spec.ranks = ranks;
    EXPECT_TRUE(ValidateJobSpecFields(spec).ok()) << ranks;
  }
}

}  // namespace
}  // namespace attune
