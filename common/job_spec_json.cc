// JobSpecToJson and JobSpecFromJson (declared in job_spec.h): how the store keeps a spec.
#include <string>

#include "absl/strings/str_cat.h"
#include "common/job_spec.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace attune {

namespace {

using json = nlohmann::json;

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

}  // namespace

std::string JobSpecToJson(const JobSpec& spec) {
  const TrainSpec& t = spec.train;
  json j = {
      {"model_dir", t.model_dir},
      {"task", TaskName(t.task)},
      {"train_path", t.train_path},
      {"validation_path", t.validation_path},
      {"targets", t.targets},
      {"method", MethodName(t.method)},
      {"lora_rank", t.lora_rank},
      {"lora_alpha", t.lora_alpha},
      {"lora_dropout", t.lora_dropout},
      {"use_rslora", t.use_rslora},
      {"learning_rate", t.learning_rate},
      {"lr_ratios", t.lr_ratios},
      {"loraplus_ratio", t.loraplus_ratio},
      {"epochs", t.epochs},
      {"max_steps", t.max_steps},
      {"batch_size", t.batch_size},
      {"max_seq_len", t.max_seq_len},
      {"packing", t.packing},
      {"tokens_per_step", t.tokens_per_step},
      {"train_on_inputs", t.train_on_inputs},
      {"warmup_steps", t.warmup_steps},
      {"schedule", ScheduleName(t.schedule)},
      {"weight_decay", t.weight_decay},
      {"max_grad_norm", t.max_grad_norm},
      {"seed", t.seed},
      {"eval_every", t.eval_every},
      {"checkpoint_every", t.checkpoint_every},
      {"keep_checkpoints", t.keep_checkpoints},
      {"eval_metric", EvalMetricName(t.eval_metric)},
      {"early_stopping_patience", t.early_stopping_patience},
      {"name", spec.name},
      {"labels", spec.labels},
      {"gpus", spec.gpus},
      {"ranks", spec.ranks},
      {"priority", spec.priority},
      {"max_retries", spec.max_retries},
  };
  return j.dump();
}

namespace {

// Sets *out from j[key] when present, with `parse` (ParseTask, ParseMethod, ParseSchedule).
template <typename T>
absl::Status ReadEnum(const json& j, const char* key,
                      absl::StatusOr<T> (*parse)(const std::string&), T* out) {
  if (!j.contains(key)) return absl::OkStatus();
  absl::StatusOr<T> value = parse(j[key].get<std::string>());
  if (!value.ok()) return value.status();
  *out = *value;
  return absl::OkStatus();
}

// The TrainSpec fields of `j`; missing ones keep their defaults. Throws json::exception on a
// value of the wrong type.
absl::Status ReadTrainSpec(const json& j, TrainSpec& t) {
  t.model_dir = j.value("model_dir", t.model_dir);
  absl::Status task = ReadEnum(j, "task", ParseTask, &t.task);
  if (!task.ok()) return task;
  t.train_path = j.value("train_path", t.train_path);
  t.validation_path = j.value("validation_path", t.validation_path);
  t.targets = j.value("targets", t.targets);
  absl::Status method = ReadEnum(j, "method", ParseMethod, &t.method);
  if (!method.ok()) return method;
  t.lora_rank = j.value("lora_rank", t.lora_rank);
  t.lora_alpha = j.value("lora_alpha", t.lora_alpha);
  t.lora_dropout = j.value("lora_dropout", t.lora_dropout);
  t.use_rslora = j.value("use_rslora", t.use_rslora);
  t.learning_rate = j.value("learning_rate", t.learning_rate);
  t.lr_ratios = j.value("lr_ratios", t.lr_ratios);
  t.loraplus_ratio = j.value("loraplus_ratio", t.loraplus_ratio);
  t.epochs = j.value("epochs", t.epochs);
  t.max_steps = j.value("max_steps", t.max_steps);
  t.batch_size = j.value("batch_size", t.batch_size);
  t.max_seq_len = j.value("max_seq_len", t.max_seq_len);
  // A job stored before packing existed ran unpacked: it resumes as it started.
  t.packing = j.value("packing", false);
  t.tokens_per_step = j.value("tokens_per_step", t.tokens_per_step);
  t.train_on_inputs = j.value("train_on_inputs", t.train_on_inputs);
  t.warmup_steps = j.value("warmup_steps", t.warmup_steps);
  absl::Status schedule = ReadEnum(j, "schedule", ParseSchedule, &t.schedule);
  if (!schedule.ok()) return schedule;
  t.weight_decay = j.value("weight_decay", t.weight_decay);
  t.max_grad_norm = j.value("max_grad_norm", t.max_grad_norm);
  t.seed = j.value("seed", t.seed);
  t.eval_every = j.value("eval_every", t.eval_every);
  t.checkpoint_every = j.value("checkpoint_every", t.checkpoint_every);
  t.keep_checkpoints = j.value("keep_checkpoints", t.keep_checkpoints);
  if (j.value("eval_metric", std::string()) != "") {
    RETURN_IF_ERROR(ReadEnum(j, "eval_metric", ParseEvalMetric, &t.eval_metric));
  }
  t.early_stopping_patience = j.value("early_stopping_patience", t.early_stopping_patience);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JobSpec> JobSpecFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Invalid("job spec: not a JSON object");
  JobSpec spec;
  try {
    absl::Status train = ReadTrainSpec(j, spec.train);
    if (!train.ok()) return train;
    spec.name = j.value("name", spec.name);
    spec.labels = j.value("labels", spec.labels);
    spec.gpus = j.value("gpus", spec.gpus);
    spec.ranks = j.value("ranks", spec.ranks);  // 0 in specs stored before ranks existed
    spec.priority = j.value("priority", spec.priority);
    spec.max_retries = j.value("max_retries", spec.max_retries);
  } catch (const json::exception& e) {
    return Invalid(absl::StrCat("job spec: ", e.what()));
  }
  return spec;
}

}  // namespace attune
