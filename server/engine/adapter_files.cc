#include "server/engine/adapter_files.h"

#include "nlohmann/json.hpp"

namespace attune::engine {

using nlohmann::json;

std::string AdapterConfigJson(const PeftLoraConfig& config) {
  const json modules_to_save =
      config.modules_to_save.empty() ? json() : json(config.modules_to_save);
  const json j = {
      {"peft_type", "LORA"},
      {"task_type", config.task_type},
      {"base_model_name_or_path", config.base_model_name_or_path},
      {"r", config.r},
      {"lora_alpha", config.lora_alpha},
      {"lora_dropout", config.lora_dropout},
      {"target_modules", config.target_modules},
      {"bias", "none"},
      {"use_rslora", config.use_rslora},
      {"modules_to_save", modules_to_save},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"layers_to_transform", nullptr},
      {"layers_pattern", nullptr},
      {"rank_pattern", json::object()},
      {"alpha_pattern", json::object()},
      {"revision", nullptr},
      {"use_dora", config.use_dora},
  };
  return j.dump(2);
}

std::string CheckpointRecordJson(const CheckpointRecord& record) {
  const TrainSpec& spec = record.spec;
  json metrics = {{"train_loss", record.train_loss}};
  if (record.eval.has_value()) {
    const EvalMetrics& eval = *record.eval;
    metrics["eval_loss"] = eval.loss;
    if (eval.accuracy) metrics["eval_accuracy"] = *eval.accuracy;
    if (eval.f1) metrics["eval_f1"] = *eval.f1;
    if (eval.mcc) metrics["eval_mcc"] = *eval.mcc;
    if (eval.pearson) metrics["eval_pearson"] = *eval.pearson;
    if (eval.spearman) metrics["eval_spearman"] = *eval.spearman;
    if (eval.perplexity) metrics["eval_perplexity"] = *eval.perplexity;
  }
  JobSpec job;
  job.train = spec;
  const json data = {
      {"train", {{"path", spec.train_path}, {"sha256", record.train_sha256}}},
      {"validation", {{"path", spec.validation_path}, {"sha256", record.validation_sha256}}}};
  const json j = {
      {"format", "attune.checkpoint.v1"},
      {"step", record.step},
      {"task", TaskName(spec.task)},
      {"method", MethodName(spec.method)},
      {"targets", spec.targets},
      {"learning_rate", spec.learning_rate},
      {"lr_ratios", spec.lr_ratios},
      {"loraplus_ratio", spec.loraplus_ratio},
      {"num_labels", record.num_labels},
      {"label_names", record.label_names},
      {"data", data},
      {"metrics", metrics},
      {"spec", json::parse(JobSpecToJson(job))},
  };
  return j.dump(2);
}

}  // namespace attune::engine
