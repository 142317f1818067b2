#include "server/store/metrics_json.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/match.h"

namespace attune::store {
namespace {

using nlohmann::json;

json Number(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

// The number at `key`: nullopt when absent, NaN when stored as null (non-finite).
std::optional<double> Get(const json& in, const char* key) {
  auto it = in.find(key);
  if (it == in.end()) return std::nullopt;
  if (it->is_number()) return it->get<double>();
  if (it->is_null()) return std::numeric_limits<double>::quiet_NaN();
  return std::nullopt;
}

double GetOr(const json& in, const char* key, double fallback) {
  return Get(in, key).value_or(fallback);
}

int64_t GetInt(const json& in, const char* key) {
  std::optional<double> v = Get(in, key);
  return v.has_value() && std::isfinite(*v) ? static_cast<int64_t>(*v) : 0;
}

}  // namespace

void AddStepJson(const StepMetrics& step, json* out) {
  (*out)["train_loss"] = Number(step.train_loss);
  (*out)["epoch"] = Number(step.epoch);
  (*out)["grad_norm"] = Number(step.grad_norm);
  (*out)["tokens_per_second"] = Number(step.tokens_per_second);
  (*out)["samples_per_second"] = Number(step.samples_per_second);
  (*out)["tokens"] = step.tokens;
  (*out)["samples"] = step.samples;
  (*out)["skipped"] = step.skipped ? 1 : 0;
  (*out)["total_steps"] = step.total_steps;
  for (const auto& [group, lr] : step.learning_rates) (*out)["lr." + group] = Number(lr);
  if (step.device_memory.has_value()) {
    (*out)["device_allocated_bytes"] = step.device_memory->allocated_bytes;
    (*out)["device_reserved_bytes"] = step.device_memory->reserved_bytes;
    (*out)["device_peak_allocated_bytes"] = step.device_memory->peak_allocated_bytes;
  }
}

std::optional<StepMetrics> StepFromJson(const json& in, int64_t step) {
  if (!in.is_object() || !in.contains("train_loss")) return std::nullopt;
  StepMetrics m;
  m.step = step;
  m.train_loss = GetOr(in, "train_loss", 0);
  m.epoch = GetOr(in, "epoch", 0);
  m.grad_norm = GetOr(in, "grad_norm", 0);
  m.tokens_per_second = GetOr(in, "tokens_per_second", 0);
  m.samples_per_second = GetOr(in, "samples_per_second", 0);
  m.tokens = GetInt(in, "tokens");
  m.samples = GetInt(in, "samples");
  m.skipped = GetInt(in, "skipped") != 0;
  m.total_steps = GetInt(in, "total_steps");
  for (const auto& [name, value] : in.items()) {
    if (absl::StartsWith(name, "lr.") && (value.is_number() || value.is_null())) {
      m.learning_rates[name.substr(3)] =
          value.is_number() ? value.get<double>() : std::numeric_limits<double>::quiet_NaN();
    }
  }
  if (in.contains("device_allocated_bytes")) {
    m.device_memory =
        DeviceMemory{GetInt(in, "device_allocated_bytes"), GetInt(in, "device_reserved_bytes"),
                     GetInt(in, "device_peak_allocated_bytes")};
  }
  return m;
}

void AddEvalJson(const EvalMetrics& eval, json* out) {
  (*out)["eval_step"] = eval.step;
  (*out)["eval_loss"] = Number(eval.loss);
  if (eval.accuracy) (*out)["eval_accuracy"] = Number(*eval.accuracy);
  if (eval.f1) (*out)["eval_f1"] = Number(*eval.f1);
  if (eval.mcc) (*out)["eval_mcc"] = Number(*eval.mcc);
  if (eval.pearson) (*out)["eval_pearson"] = Number(*eval.pearson);
  if (eval.spearman) (*out)["eval_spearman"] = Number(*eval.spearman);
  if (eval.perplexity) (*out)["eval_perplexity"] = Number(*eval.perplexity);
  (*out)["eval_examples"] = eval.examples;
}

std::optional<EvalMetrics> EvalFromJson(const json& in, int64_t fallback_step) {
  if (!in.is_object() || !in.contains("eval_loss")) return std::nullopt;
  EvalMetrics m;
  m.step = in.contains("eval_step") ? GetInt(in, "eval_step") : fallback_step;
  m.loss = GetOr(in, "eval_loss", 0);
  m.accuracy = Get(in, "eval_accuracy");
  m.f1 = Get(in, "eval_f1");  // absent in rows written before F1 and MCC existed
  m.mcc = Get(in, "eval_mcc");
  m.pearson = Get(in, "eval_pearson");
  m.spearman = Get(in, "eval_spearman");
  m.perplexity = Get(in, "eval_perplexity");
  m.examples = GetInt(in, "eval_examples");
  return m;
}

}  // namespace attune::store
