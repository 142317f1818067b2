#include "common/job_spec.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace attune {
namespace {

using nlohmann::json;

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

bool IsProjection(const std::string& name) {
  const auto& all = AllProjections();
  return std::find(all.begin(), all.end(), name) != all.end();
}

std::string ProjectionList() { return absl::StrJoin(AllProjections(), ","); }

}  // namespace

EvalMetric DefaultEvalMetric(Task task) {
  switch (task) {
    case Task::kSequenceClassification:
      return EvalMetric::kAccuracy;
    case Task::kRegression:
      return EvalMetric::kPearson;
    default:
      return EvalMetric::kLoss;
  }
}

void ApplyJobSpecDefaults(JobSpec* spec) {
  TrainSpec& t = spec->train;
  if (t.eval_metric == EvalMetric::kUnspecified && t.task != Task::kUnspecified) {
    t.eval_metric = DefaultEvalMetric(t.task);
  }
  const bool q_and_v = t.targets == std::vector<std::string>{"q", "v"} ||
                       t.targets == std::vector<std::string>{"v", "q"};
  if (t.method != Method::kFull && q_and_v && t.lr_ratios.empty()) {
    t.lr_ratios["v"] = kDefaultValueLrRatio;
  }
}

int64_t PackedRowsPerStep(const TrainSpec& spec) {
  const int64_t budget = spec.tokens_per_step > 0
                             ? spec.tokens_per_step
                             : static_cast<int64_t>(spec.batch_size) * spec.max_seq_len;
  return std::max<int64_t>(1, budget / spec.max_seq_len);
}

namespace {

absl::Status CheckRequired(const TrainSpec& t) {
  if (t.model_dir.empty())
    return Invalid("model: required; the path of a Hugging Face model directory");
  if (t.task == Task::kUnspecified) {
    return Invalid("task: required; expected one of classification, regression, causal-lm");
  }
  if (t.train_path.empty()) return Invalid("train: required; the path of a JSONL file");
  return absl::OkStatus();
}

absl::Status CheckTargets(const TrainSpec& t) {
  if (t.targets.empty()) {
    return Invalid(absl::StrCat("targets: at least one projection required; expected any of ",
                                ProjectionList()));
  }
  std::set<std::string> seen;
  for (const std::string& target : t.targets) {
    if (!IsProjection(target)) {
      return Invalid(absl::StrCat("targets: unknown projection '", target, "'; expected any of ",
                                  ProjectionList()));
    }
    if (!seen.insert(target).second) {
      return Invalid(absl::StrCat("targets: projection '", target, "' given twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLora(const TrainSpec& t) {
  if (t.method == Method::kFull) return absl::OkStatus();  // LoRA and DoRA read these
  if (t.lora_rank < 1 || t.lora_rank > 4096) {
    return Invalid(absl::StrCat("lora.rank: ", t.lora_rank, " is out of range; expected 1..4096"));
  }
  if (!(t.lora_alpha > 0 && t.lora_alpha <= 1e6)) {  // the scale must fit a float
    return Invalid(
        absl::StrCat("lora.alpha: ", t.lora_alpha, " must be a finite number in (0, 1e6]"));
  }
  if (!(t.lora_dropout >= 0 && t.lora_dropout < 1)) {
    return Invalid(absl::StrCat("lora.dropout: ", t.lora_dropout, " must be in [0, 1)"));
  }
  return absl::OkStatus();
}

absl::Status CheckLearningRates(const TrainSpec& t) {
  if (!(t.learning_rate > 0) || t.learning_rate > 10) {
    return Invalid(absl::StrCat("learning_rate: ", t.learning_rate, " must be in (0, 10]"));
  }
  for (const auto& [projection, ratio] : t.lr_ratios) {
    if (!IsProjection(projection)) {
      return Invalid(absl::StrCat("lr_ratios: unknown projection '", projection,
                                  "'; expected any of ", ProjectionList()));
    }
    if (std::find(t.targets.begin(), t.targets.end(), projection) == t.targets.end()) {
      return Invalid(absl::StrCat("lr_ratios: projection '", projection,
                                  "' is not among the targets (", absl::StrJoin(t.targets, ","),
                                  ")"));
    }
    if (!(ratio > 0) || ratio > 1000) {
      return Invalid(absl::StrCat("lr_ratios: ratio for '", projection, "' is ", ratio,
                                  "; expected a number in (0, 1000]"));
    }
  }
  if (!(t.loraplus_ratio > 0) || t.loraplus_ratio > 1000) {
    return Invalid(absl::StrCat("loraplus_ratio: ", t.loraplus_ratio, " must be in (0, 1000]"));
  }
  return absl::OkStatus();
}

// 16M tokens: far above a useful step, low enough that a row count fits any index type.
constexpr int64_t kMaxTokensPerStep = int64_t{1} << 24;

absl::Status CheckLengthAndBatch(const TrainSpec& t) {
  if (t.epochs < 1) return Invalid(absl::StrCat("epochs: ", t.epochs, " must be >= 1"));
  if (t.max_steps < 0) return Invalid(absl::StrCat("max_steps: ", t.max_steps, " must be >= 0"));
  if (t.batch_size < 1 || t.batch_size > 65536) {
    return Invalid(absl::StrCat("batch_size: ", t.batch_size, " must be in 1..65536"));
  }
  if (t.max_seq_len < 8 || t.max_seq_len > 1 << 20) {
    return Invalid(absl::StrCat("max_seq_len: ", t.max_seq_len, " must be in 8..1048576"));
  }
  if (t.warmup_steps < 0) {
    return Invalid(absl::StrCat("warmup_steps: ", t.warmup_steps, " must be >= 0"));
  }
  if (t.tokens_per_step != 0 &&
      (t.tokens_per_step < t.max_seq_len || t.tokens_per_step > kMaxTokensPerStep)) {
    return Invalid(absl::StrCat(
        "tokens_per_step: ", t.tokens_per_step, " must be 0 (about batch_size ",
        "examples per step) or in max_seq_len (", t.max_seq_len, ")..", kMaxTokensPerStep));
  }
  return absl::OkStatus();
}

// Upper bounds far above any useful value, low enough that the engine's float math cannot
// overflow (1e308 would fail the job later with a message naming no field).
constexpr double kMaxWeightDecay = 10;
constexpr double kMaxGradNorm = 1e6;

absl::Status CheckRegularisation(const TrainSpec& t) {
  if (!(t.weight_decay >= 0 && t.weight_decay <= kMaxWeightDecay)) {
    return Invalid(
        absl::StrCat("weight_decay: ", t.weight_decay, " must be a finite number in [0, 10]"));
  }
  if (!(t.max_grad_norm >= 0 && t.max_grad_norm <= kMaxGradNorm)) {
    return Invalid(absl::StrCat("max_grad_norm: ", t.max_grad_norm,
                                " must be a finite number in [0, 1e6] (0 = off)"));
  }
  return absl::OkStatus();
}

absl::Status CheckCheckpointing(const TrainSpec& t) {
  if (t.eval_every < 0) return Invalid(absl::StrCat("eval_every: ", t.eval_every, " must be >= 0"));
  if (t.checkpoint_every < 0) {
    return Invalid(absl::StrCat("checkpoint_every: ", t.checkpoint_every, " must be >= 0"));
  }
  if (t.keep_checkpoints < 1) {
    return Invalid(absl::StrCat("keep_checkpoints: ", t.keep_checkpoints, " must be >= 1"));
  }
  return absl::OkStatus();
}

// The eval_metrics that `task`'s evaluation reports.
std::vector<EvalMetric> EvalMetricsOfTask(Task task) {
  switch (task) {
    case Task::kSequenceClassification:
      return {EvalMetric::kAccuracy, EvalMetric::kF1, EvalMetric::kMcc, EvalMetric::kLoss};
    case Task::kRegression:
      return {EvalMetric::kPearson, EvalMetric::kSpearman, EvalMetric::kLoss};
    default:
      return {EvalMetric::kLoss};
  }
}

absl::Status CheckEvalMetric(const TrainSpec& t) {
  if (t.early_stopping_patience < 0 || t.early_stopping_patience > 1000000) {
    return Invalid(absl::StrCat("early_stopping_patience: ", t.early_stopping_patience,
                                " must be in 0..1000000 (0 = off)"));
  }
  if (t.early_stopping_patience > 0 && t.validation_path.empty()) {
    return Invalid(
        "early_stopping_patience: needs a validation set; set validation or leave it at 0");
  }
  if (t.eval_metric == EvalMetric::kUnspecified) return absl::OkStatus();
  const std::vector<EvalMetric> allowed = EvalMetricsOfTask(t.task);
  if (std::find(allowed.begin(), allowed.end(), t.eval_metric) != allowed.end()) {
    return absl::OkStatus();
  }
  std::vector<std::string> names;
  for (EvalMetric m : allowed) names.push_back(EvalMetricName(m));
  return Invalid(absl::StrCat("eval_metric: '", EvalMetricName(t.eval_metric),
                              "' does not apply to ", TaskName(t.task), "; expected ",
                              absl::StrJoin(names, ", ")));
}

}  // namespace

absl::Status ValidateJobSpecFields(const JobSpec& spec) {
  const TrainSpec& t = spec.train;
  for (absl::Status (*check)(const TrainSpec&) :
       {CheckRequired, CheckTargets, CheckLora, CheckLearningRates, CheckLengthAndBatch,
        CheckRegularisation, CheckCheckpointing, CheckEvalMetric}) {
    absl::Status status = check(t);
    if (!status.ok()) return status;
  }
  if (spec.gpus < -1 || spec.gpus > 64) {
    return Invalid(absl::StrCat("gpus: ", spec.gpus, " must be in 0..64 (or unset)"));
  }
  if (spec.ranks < 0 || spec.ranks > 64) {
    return Invalid(absl::StrCat("ranks: ", spec.ranks, " must be in 1..64 (or unset)"));
  }
  if (spec.max_retries < 0 || spec.max_retries > 100) {
    return Invalid(absl::StrCat("max_retries: ", spec.max_retries, " must be in 0..100"));
  }
  return absl::OkStatus();
}

std::string TaskName(Task task) {
  switch (task) {
    case Task::kSequenceClassification:
      return "classification";
    case Task::kRegression:
      return "regression";
    case Task::kCausalLm:
      return "causal-lm";
    case Task::kUnspecified:
      break;
  }
  return "unspecified";
}

absl::StatusOr<Task> ParseTask(const std::string& name) {
  if (name == "classification") return Task::kSequenceClassification;
  if (name == "regression") return Task::kRegression;
  if (name == "causal-lm") return Task::kCausalLm;
  return Invalid(absl::StrCat("task: unknown task '", name,
                              "'; expected one of classification, regression, causal-lm"));
}

std::string MethodName(Method method) {
  switch (method) {
    case Method::kLora:
      return "lora";
    case Method::kFull:
      return "full";
    case Method::kDora:
      return "dora";
  }
  return "lora";
}

absl::StatusOr<Method> ParseMethod(const std::string& name) {
  if (name == "lora") return Method::kLora;
  if (name == "full") return Method::kFull;
  if (name == "dora") return Method::kDora;
  return Invalid(
      absl::StrCat("method: unknown method '", name, "'; expected one of lora, full, dora"));
}

std::string ScheduleName(Schedule schedule) {
  switch (schedule) {
    case Schedule::kLinear:
      return "linear";
    case Schedule::kCosine:
      return "cosine";
    case Schedule::kConstant:
      return "constant";
  }
  return "linear";
}

absl::StatusOr<Schedule> ParseSchedule(const std::string& name) {
  if (name == "linear") return Schedule::kLinear;
  if (name == "cosine") return Schedule::kCosine;
  if (name == "constant") return Schedule::kConstant;
  return Invalid(absl::StrCat("schedule: unknown schedule '", name,
                              "'; expected one of linear, cosine, constant"));
}

}  // namespace attune
