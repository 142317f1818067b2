#include "server/scheduler/job_observer.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace attune::scheduler {
namespace {

// The metrics of an evaluation, named as they appear in events and latest_metrics.
std::map<std::string, double> EvalMetricMap(const engine::EvalMetrics& eval) {
  std::map<std::string, double> metrics = {{"eval_loss", eval.loss},
                                           {"eval_examples", static_cast<double>(eval.examples)}};
  if (eval.accuracy) metrics["eval_accuracy"] = *eval.accuracy;
  if (eval.pearson) metrics["eval_pearson"] = *eval.pearson;
  if (eval.spearman) metrics["eval_spearman"] = *eval.spearman;
  if (eval.perplexity) metrics["eval_perplexity"] = *eval.perplexity;
  return metrics;
}

}  // namespace

JobObserver::JobObserver(std::string job_id, std::function<int64_t()> now_us)
    : job_id_(std::move(job_id)), now_us_(std::move(now_us)) {}

store::JobEvent JobObserver::NewEvent(store::EventType type) const {
  store::JobEvent event;
  event.job_id = job_id_;
  event.time_us = now_us_();
  event.type = type;
  event.state = store::JobState::kRunning;
  return event;
}

void JobObserver::OnStart(const engine::SpecCheck& setup, int64_t resumed_from_step) {
  absl::MutexLock lock(&mu_);
  progress_.setup = setup;
  if (resumed_from_step > 0) {
    store::JobEvent event = NewEvent(store::EventType::kStateChanged);
    event.step = resumed_from_step;
    event.message = absl::StrCat("resumed from the checkpoint at step ", resumed_from_step);
    progress_.last_step = resumed_from_step;
    progress_.events.push_back(std::move(event));
  }
}

void JobObserver::OnStep(const engine::StepMetrics& step) {
  store::JobEvent event = NewEvent(store::EventType::kMetrics);
  event.step = step.step;
  event.metrics = {{"train_loss", step.train_loss},
                   {"epoch", step.epoch},
                   {"grad_norm", step.grad_norm},
                   {"tokens_per_second", step.tokens_per_second},
                   {"samples_per_second", step.samples_per_second},
                   {"skipped", step.skipped ? 1.0 : 0.0}};
  for (const auto& [group, lr] : step.learning_rates) event.metrics["lr." + group] = lr;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, value] : event.metrics) progress_.latest_metrics[name] = value;
  progress_.last_step = step.step;
  progress_.total_steps = step.total_steps;
  progress_.events.push_back(std::move(event));
}

void JobObserver::OnEval(const engine::EvalMetrics& eval) {
  store::JobEvent event = NewEvent(store::EventType::kEval);
  event.step = eval.step;
  event.metrics = EvalMetricMap(eval);
  absl::MutexLock lock(&mu_);
  for (const auto& [name, value] : event.metrics) progress_.latest_metrics[name] = value;
  last_eval_ = eval;
  progress_.events.push_back(std::move(event));
}

void JobObserver::OnCheckpoint(const engine::CheckpointInfo& checkpoint) {
  store::JobEvent event = NewEvent(store::EventType::kCheckpoint);
  event.step = checkpoint.step;
  event.path = checkpoint.dir;
  event.bytes = checkpoint.adapter_bytes;
  event.sha256 = checkpoint.sha256;
  if (checkpoint.best) event.message = "best so far by the validation metric";
  store::CheckpointRecord record;
  record.job_id = job_id_;
  record.step = checkpoint.step;
  record.dir = checkpoint.dir;
  record.bytes = checkpoint.adapter_bytes;
  record.sha256 = checkpoint.sha256;
  record.created_us = event.time_us;
  absl::MutexLock lock(&mu_);
  record.eval_metric = checkpoint.eval_metric;
  for (int64_t step : checkpoint.deleted_steps) {
    progress_.deleted_checkpoint_steps.push_back(step);
  }
  progress_.adapter_bytes = checkpoint.adapter_bytes;
  progress_.checkpoints.push_back(std::move(record));
  progress_.events.push_back(std::move(event));
}

void JobObserver::OnWarning(const std::string& message) {
  store::JobEvent event = NewEvent(store::EventType::kWarning);
  event.message = message;
  absl::MutexLock lock(&mu_);
  event.step = progress_.last_step;
  progress_.events.push_back(std::move(event));
}

bool JobObserver::StopRequested() { return stop_.load() != StopReason::kNone; }

void JobObserver::RequestStop(StopReason reason) {
  StopReason expected = StopReason::kNone;
  stop_.compare_exchange_strong(expected, reason);
}

JobProgress JobObserver::Drain() {
  absl::MutexLock lock(&mu_);
  JobProgress out;
  out.events = std::move(progress_.events);
  out.checkpoints = std::move(progress_.checkpoints);
  out.deleted_checkpoint_steps = std::move(progress_.deleted_checkpoint_steps);
  progress_.events.clear();
  progress_.checkpoints.clear();
  progress_.deleted_checkpoint_steps.clear();
  out.latest_metrics = progress_.latest_metrics;
  out.last_step = progress_.last_step;
  out.total_steps = progress_.total_steps;
  out.setup = progress_.setup;
  out.adapter_bytes = progress_.adapter_bytes;
  return out;
}

}  // namespace attune::scheduler
