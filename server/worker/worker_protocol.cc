#include "server/worker/worker_protocol.h"

#include <fstream>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"

namespace attune::worker {
namespace {

// Proto3 `optional double` to and from std::optional<double>.
template <typename SetFn>
void SetIf(const std::optional<double>& value, SetFn set) {
  if (value.has_value()) set(*value);
}

std::optional<double> Optional(bool has, double value) {
  return has ? std::optional<double>(value) : std::nullopt;
}

}  // namespace

wire::Started ToWire(const engine::SpecCheck& setup, int64_t resumed_from_step) {
  wire::Started out;
  out.set_architecture(setup.architecture);
  out.set_total_parameters(setup.total_parameters);
  out.set_trainable_parameters(setup.trainable_parameters);
  out.set_base_model_bytes(setup.base_model_bytes);
  out.set_num_labels(setup.num_labels);
  out.set_train_examples(setup.train_examples);
  out.set_validation_examples(setup.validation_examples);
  out.set_resumed_from_step(resumed_from_step);
  return out;
}

engine::SpecCheck FromWire(const wire::Started& started) {
  engine::SpecCheck out;
  out.architecture = started.architecture();
  out.total_parameters = started.total_parameters();
  out.trainable_parameters = started.trainable_parameters();
  out.base_model_bytes = started.base_model_bytes();
  out.num_labels = started.num_labels();
  out.train_examples = started.train_examples();
  out.validation_examples = started.validation_examples();
  return out;
}

wire::StepMetrics ToWire(const StepMetrics& metrics) {
  wire::StepMetrics out;
  out.set_step(metrics.step);
  out.set_total_steps(metrics.total_steps);
  out.set_epoch(metrics.epoch);
  out.set_train_loss(metrics.train_loss);
  for (const auto& [name, rate] : metrics.learning_rates)
    (*out.mutable_learning_rates())[name] = rate;
  out.set_grad_norm(metrics.grad_norm);
  out.set_tokens_per_second(metrics.tokens_per_second);
  out.set_samples_per_second(metrics.samples_per_second);
  out.set_tokens(metrics.tokens);
  out.set_samples(metrics.samples);
  out.set_skipped(metrics.skipped);
  if (metrics.device_memory.has_value()) {
    wire::DeviceMemory* memory = out.mutable_device_memory();
    memory->set_allocated_bytes(metrics.device_memory->allocated_bytes);
    memory->set_reserved_bytes(metrics.device_memory->reserved_bytes);
    memory->set_peak_allocated_bytes(metrics.device_memory->peak_allocated_bytes);
  }
  return out;
}

StepMetrics FromWire(const wire::StepMetrics& metrics) {
  StepMetrics out;
  out.step = metrics.step();
  out.total_steps = metrics.total_steps();
  out.epoch = metrics.epoch();
  out.train_loss = metrics.train_loss();
  out.learning_rates.insert(metrics.learning_rates().begin(), metrics.learning_rates().end());
  out.grad_norm = metrics.grad_norm();
  out.tokens_per_second = metrics.tokens_per_second();
  out.samples_per_second = metrics.samples_per_second();
  out.tokens = metrics.tokens();
  out.samples = metrics.samples();
  out.skipped = metrics.skipped();
  if (metrics.has_device_memory()) {
    out.device_memory = DeviceMemory{metrics.device_memory().allocated_bytes(),
                                     metrics.device_memory().reserved_bytes(),
                                     metrics.device_memory().peak_allocated_bytes()};
  }
  return out;
}

wire::EvalMetrics ToWire(const EvalMetrics& metrics) {
  wire::EvalMetrics out;
  out.set_step(metrics.step);
  out.set_loss(metrics.loss);
  SetIf(metrics.accuracy, [&](double v) { out.set_accuracy(v); });
  SetIf(metrics.f1, [&](double v) { out.set_f1(v); });
  SetIf(metrics.mcc, [&](double v) { out.set_mcc(v); });
  SetIf(metrics.pearson, [&](double v) { out.set_pearson(v); });
  SetIf(metrics.spearman, [&](double v) { out.set_spearman(v); });
  SetIf(metrics.perplexity, [&](double v) { out.set_perplexity(v); });
  out.set_examples(metrics.examples);
  return out;
}

EvalMetrics FromWire(const wire::EvalMetrics& metrics) {
  EvalMetrics out;
  out.step = metrics.step();
  out.loss = metrics.loss();
  out.accuracy = Optional(metrics.has_accuracy(), metrics.accuracy());
  out.f1 = Optional(metrics.has_f1(), metrics.f1());
  out.mcc = Optional(metrics.has_mcc(), metrics.mcc());
  out.pearson = Optional(metrics.has_pearson(), metrics.pearson());
  out.spearman = Optional(metrics.has_spearman(), metrics.spearman());
  out.perplexity = Optional(metrics.has_perplexity(), metrics.perplexity());
  out.examples = metrics.examples();
  return out;
}

wire::CheckpointInfo ToWire(const engine::CheckpointInfo& checkpoint) {
  wire::CheckpointInfo out;
  out.set_step(checkpoint.step);
  out.set_dir(checkpoint.dir);
  out.set_adapter_bytes(checkpoint.adapter_bytes);
  out.set_sha256(checkpoint.sha256);
  SetIf(checkpoint.eval_metric, [&](double v) { out.set_eval_metric(v); });
  out.set_best(checkpoint.best);
  for (int64_t step : checkpoint.deleted_steps) out.add_deleted_steps(step);
  return out;
}

engine::CheckpointInfo FromWire(const wire::CheckpointInfo& checkpoint) {
  engine::CheckpointInfo out;
  out.step = checkpoint.step();
  out.dir = checkpoint.dir();
  out.adapter_bytes = checkpoint.adapter_bytes();
  out.sha256 = checkpoint.sha256();
  out.eval_metric = Optional(checkpoint.has_eval_metric(), checkpoint.eval_metric());
  out.best = checkpoint.best();
  out.deleted_steps.assign(checkpoint.deleted_steps().begin(), checkpoint.deleted_steps().end());
  return out;
}

wire::Finished ToWire(const absl::StatusOr<engine::TrainResult>& result) {
  wire::Finished out;
  if (!result.ok()) {
    out.mutable_failure()->set_code(static_cast<int32_t>(result.status().code()));
    out.mutable_failure()->set_message(std::string(result.status().message()));
    return out;
  }
  wire::TrainResult* r = out.mutable_result();
  r->set_stopped(result->outcome == engine::Outcome::kStopped);
  r->set_steps(result->steps);
  if (result->final_eval.has_value()) *r->mutable_final_eval() = ToWire(*result->final_eval);
  if (result->final_checkpoint.has_value()) {
    *r->mutable_final_checkpoint() = ToWire(*result->final_checkpoint);
  }
  r->set_total_parameters(result->total_parameters);
  r->set_trainable_parameters(result->trainable_parameters);
  r->set_graph_replays(result->graph_replays);
  r->set_stopped_early(result->stopped_early);
  return out;
}

absl::StatusOr<engine::TrainResult> FromWire(const wire::Finished& finished) {
  if (finished.has_failure()) {
    const int32_t code = finished.failure().code();
    // A failure is never OK: code 0, or one this build does not know, reads as UNKNOWN.
    const bool known = code > 0 && code <= static_cast<int32_t>(absl::StatusCode::kUnauthenticated);
    return absl::Status(known ? static_cast<absl::StatusCode>(code) : absl::StatusCode::kUnknown,
                        finished.failure().message());
  }
  const wire::TrainResult& r = finished.result();
  engine::TrainResult out;
  out.outcome = r.stopped() ? engine::Outcome::kStopped : engine::Outcome::kCompleted;
  out.steps = r.steps();
  if (r.has_final_eval()) out.final_eval = FromWire(r.final_eval());
  if (r.has_final_checkpoint()) out.final_checkpoint = FromWire(r.final_checkpoint());
  out.total_parameters = r.total_parameters();
  out.trainable_parameters = r.trainable_parameters();
  out.graph_replays = r.graph_replays();
  out.stopped_early = r.stopped_early();
  return out;
}

absl::StatusOr<std::string> ReadWorkerToken(const std::string& flag, const std::string& path) {
  std::ifstream in(path);
  std::string token;
  if (!std::getline(in, token) || token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " holds no token on its first line"));
  }
  return token;
}

}  // namespace attune::worker
