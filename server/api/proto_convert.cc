#include "server/api/proto_convert.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "google/protobuf/util/time_util.h"
#include "server/api/proto_enums.h"

namespace attune::api {
namespace {

google::protobuf::Timestamp FromMicros(int64_t us) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(us);
}

void StepToProto(const StepMetrics& m, v1::JobEvent::StepMetrics* p) {
  p->set_step(m.step);
  p->set_total_steps(m.total_steps);
  p->set_epoch(m.epoch);
  p->set_train_loss(m.train_loss);
  for (const auto& [group, lr] : m.learning_rates) (*p->mutable_learning_rates())[group] = lr;
  p->set_grad_norm(m.grad_norm);
  p->set_tokens_per_second(m.tokens_per_second);
  p->set_samples_per_second(m.samples_per_second);
  p->set_skipped(m.skipped);
  p->set_tokens(m.tokens);
  p->set_samples(m.samples);
  if (m.device_memory.has_value()) {
    auto* memory = p->mutable_device_memory();
    memory->set_allocated_bytes(m.device_memory->allocated_bytes);
    memory->set_reserved_bytes(m.device_memory->reserved_bytes);
    memory->set_peak_allocated_bytes(m.device_memory->peak_allocated_bytes);
  }
}

}  // namespace

void EvalToProto(const EvalMetrics& m, v1::JobEvent::EvalMetrics* p) {
  p->set_step(m.step);
  p->set_loss(m.loss);
  if (m.accuracy) p->set_accuracy(*m.accuracy);
  if (m.f1) p->set_f1(*m.f1);
  if (m.mcc) p->set_mcc(*m.mcc);
  if (m.pearson) p->set_pearson(*m.pearson);
  if (m.spearman) p->set_spearman(*m.spearman);
  if (m.perplexity) p->set_perplexity(*m.perplexity);
  p->set_examples(m.examples);
}

namespace {

// Job.metrics: the same values as latest_step and latest_eval, by name.
void AddFlatMetrics(const store::Job& job, v1::Job* p) {
  auto& metrics = *p->mutable_metrics();
  if (job.latest_step.has_value()) {
    const StepMetrics& m = *job.latest_step;
    metrics["train_loss"] = m.train_loss;
    metrics["epoch"] = m.epoch;
    metrics["grad_norm"] = m.grad_norm;
    metrics["tokens_per_second"] = m.tokens_per_second;
    metrics["samples_per_second"] = m.samples_per_second;
    for (const auto& [group, lr] : m.learning_rates) metrics["lr." + group] = lr;
  }
  if (job.latest_eval.has_value()) {
    const EvalMetrics& m = *job.latest_eval;
    metrics["eval_loss"] = m.loss;
    if (m.accuracy) metrics["eval_accuracy"] = *m.accuracy;
    if (m.f1) metrics["eval_f1"] = *m.f1;
    if (m.mcc) metrics["eval_mcc"] = *m.mcc;
    if (m.pearson) metrics["eval_pearson"] = *m.pearson;
    if (m.spearman) metrics["eval_spearman"] = *m.spearman;
    if (m.perplexity) metrics["eval_perplexity"] = *m.perplexity;
  }
}

}  // namespace

namespace {

// The model, data and adapter fields; unset optional fields keep TrainSpec's defaults.
void ModelAndAdapterFromProto(const v1::JobSpec& p, TrainSpec& t) {
  t.model_dir = p.model();
  t.train_path = p.train();
  t.validation_path = p.validation();
  t.targets.assign(p.targets().begin(), p.targets().end());
  if (t.targets.empty()) t.targets = {"q", "v"};
  std::sort(t.targets.begin(), t.targets.end());
  if (p.lora().has_rank()) t.lora_rank = p.lora().rank();
  if (p.lora().has_alpha()) t.lora_alpha = p.lora().alpha();
  if (p.lora().has_dropout()) t.lora_dropout = p.lora().dropout();
  t.use_rslora = p.lora().use_rslora();
}

// The optimisation and bookkeeping fields.
void TrainingFromProto(const v1::JobSpec& p, TrainSpec& t) {
  if (p.has_learning_rate()) t.learning_rate = p.learning_rate();
  t.lr_ratios.insert(p.lr_ratios().begin(), p.lr_ratios().end());
  if (p.has_loraplus_ratio()) t.loraplus_ratio = p.loraplus_ratio();
  if (p.has_epochs()) t.epochs = p.epochs();
  t.max_steps = p.max_steps();
  if (p.has_batch_size()) t.batch_size = p.batch_size();
  if (p.has_max_seq_len()) t.max_seq_len = p.max_seq_len();
  if (p.has_packing()) t.packing = p.packing();
  t.tokens_per_step = p.tokens_per_step();
  t.train_on_inputs = p.train_on_inputs();
  t.warmup_steps = p.warmup_steps();
  t.weight_decay = p.weight_decay();
  if (p.has_max_grad_norm()) t.max_grad_norm = p.max_grad_norm();
  if (p.has_seed()) t.seed = p.seed();
  t.eval_every = p.eval_every();
  t.checkpoint_every = p.checkpoint_every();
  if (p.has_keep_checkpoints()) t.keep_checkpoints = p.keep_checkpoints();
  t.early_stopping_patience = p.early_stopping_patience();
}

void TrainSpecToProto(const TrainSpec& t, v1::JobSpec* p) {
  p->set_model(t.model_dir);
  p->set_task(TaskToProto(t.task));
  p->set_train(t.train_path);
  p->set_validation(t.validation_path);
  for (const std::string& target : t.targets) p->add_targets(target);
  p->set_method(MethodToProto(t.method));
  p->mutable_lora()->set_rank(t.lora_rank);
  p->mutable_lora()->set_alpha(t.lora_alpha);
  p->mutable_lora()->set_dropout(t.lora_dropout);
  p->mutable_lora()->set_use_rslora(t.use_rslora);
  p->set_learning_rate(t.learning_rate);
  p->mutable_lr_ratios()->insert(t.lr_ratios.begin(), t.lr_ratios.end());
  p->set_loraplus_ratio(t.loraplus_ratio);
  p->set_epochs(t.epochs);
  p->set_max_steps(t.max_steps);
  p->set_batch_size(t.batch_size);
  p->set_max_seq_len(t.max_seq_len);
  p->set_packing(t.packing);
  p->set_tokens_per_step(t.tokens_per_step);
  p->set_train_on_inputs(t.train_on_inputs);
  p->set_warmup_steps(t.warmup_steps);
  p->set_schedule(ScheduleToProto(t.schedule));
  p->set_weight_decay(t.weight_decay);
  p->set_max_grad_norm(t.max_grad_norm);
  p->set_seed(t.seed);
  p->set_eval_every(t.eval_every);
  p->set_checkpoint_every(t.checkpoint_every);
  p->set_keep_checkpoints(t.keep_checkpoints);
  p->set_eval_metric(EvalMetricToProto(t.eval_metric));
  p->set_early_stopping_patience(t.early_stopping_patience);
}

}  // namespace

absl::StatusOr<JobSpec> JobSpecFromProto(const v1::JobSpec& p) {
  JobSpec spec;
  TrainSpec& t = spec.train;
  ASSIGN_OR_RETURN(t.task, TaskFromProto(p.task()));
  ASSIGN_OR_RETURN(t.method, MethodFromProto(p.method()));
  ASSIGN_OR_RETURN(t.schedule, ScheduleFromProto(p.schedule()));
  ASSIGN_OR_RETURN(t.eval_metric, EvalMetricFromProto(p.eval_metric()));
  ModelAndAdapterFromProto(p, t);
  TrainingFromProto(p, t);
  spec.gpus = p.has_gpus() ? p.gpus() : -1;    // -1 = not set; the scheduler picks
  spec.ranks = p.has_ranks() ? p.ranks() : 0;  // 0 = not set; the scheduler picks
  spec.priority = p.priority();
  if (p.has_max_retries()) spec.max_retries = p.max_retries();
  spec.name = p.name();
  spec.labels.insert(p.labels().begin(), p.labels().end());
  return spec;
}

v1::JobSpec JobSpecToProto(const JobSpec& spec) {
  v1::JobSpec p;
  TrainSpecToProto(spec.train, &p);
  if (spec.gpus >= 0) p.set_gpus(spec.gpus);
  if (spec.ranks > 0) p.set_ranks(spec.ranks);
  p.set_priority(spec.priority);
  p.set_max_retries(spec.max_retries);
  p.set_name(spec.name);
  p.mutable_labels()->insert(spec.labels.begin(), spec.labels.end());
  return p;
}

v1::JobState JobStateToProto(store::JobState state) {
  switch (state) {
    case store::JobState::kQueued:
      return v1::QUEUED;
    case store::JobState::kRunning:
      return v1::RUNNING;
    case store::JobState::kSucceeded:
      return v1::SUCCEEDED;
    case store::JobState::kFailed:
      return v1::FAILED;
    case store::JobState::kCancelled:
      return v1::CANCELLED;
    case store::JobState::kPaused:
      return v1::PAUSED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

absl::StatusOr<store::JobState> JobStateFromProto(v1::JobState state) {
  switch (state) {
    case v1::QUEUED:
      return store::JobState::kQueued;
    case v1::RUNNING:
      return store::JobState::kRunning;
    case v1::SUCCEEDED:
      return store::JobState::kSucceeded;
    case v1::FAILED:
      return store::JobState::kFailed;
    case v1::CANCELLED:
      return store::JobState::kCancelled;
    case v1::PAUSED:
      return store::JobState::kPaused;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("state: unknown value ", state,
                       "; expected one of QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, PAUSED"));
  }
}

v1::Job JobToProto(const store::Job& job) {
  v1::Job p;
  p.set_id(job.id);
  *p.mutable_spec() = JobSpecToProto(job.spec);
  p.set_state(JobStateToProto(job.state));
  if (job.created_us > 0) *p.mutable_create_time() = FromMicros(job.created_us);
  if (job.started_us > 0) *p.mutable_start_time() = FromMicros(job.started_us);
  if (job.finished_us > 0) *p.mutable_finish_time() = FromMicros(job.finished_us);
  for (const std::string& device : job.devices) p.add_devices(device);
  for (const std::string& id : job.shared_base_with) p.add_shared_base_with(id);
  AddFlatMetrics(job, &p);
  if (job.latest_step.has_value()) StepToProto(*job.latest_step, p.mutable_latest_step());
  if (job.latest_eval.has_value()) EvalToProto(*job.latest_eval, p.mutable_latest_eval());
  p.set_current_step(job.last_step);
  p.set_total_steps(job.total_steps);
  p.set_trainable_parameters(job.trainable_parameters);
  p.set_total_parameters(job.total_parameters);
  p.set_adapter_bytes(job.adapter_bytes);
  p.set_base_model_bytes(job.base_model_bytes);
  p.set_error(job.error);
  p.set_owner(job.owner);
  p.set_request_id(job.request_id);
  return p;
}

v1::JobEvent JobEventToProto(const store::JobEvent& e) {
  v1::JobEvent p;
  p.set_job_id(e.job_id);
  p.set_sequence(e.sequence);
  if (e.time_us > 0) *p.mutable_time() = FromMicros(e.time_us);
  switch (e.type) {
    case store::EventType::kStateChanged: {
      auto* sc = p.mutable_state_change();
      sc->set_state(JobStateToProto(e.state));
      sc->set_message(e.message);
      for (const std::string& device : e.devices) sc->add_devices(device);
      break;
    }
    case store::EventType::kMetrics: {
      StepMetrics metrics = e.step_metrics.value_or(StepMetrics{});
      metrics.step = e.step;
      StepToProto(metrics, p.mutable_step());
      break;
    }
    case store::EventType::kEval: {
      EvalMetrics metrics = e.eval.value_or(EvalMetrics{});
      metrics.step = e.step;
      EvalToProto(metrics, p.mutable_eval());
      break;
    }
    case store::EventType::kCheckpoint: {
      auto* c = p.mutable_checkpoint();
      c->set_step(e.step);
      c->set_adapter_bytes(e.bytes);
      c->set_sha256(e.sha256);
      c->set_best(e.best);
      break;
    }
    case store::EventType::kWarning:
      p.mutable_warning()->set_message(e.message);
      break;
    case store::EventType::kError:
      p.mutable_error()->set_message(e.message);
      break;
  }
  return p;
}

}  // namespace attune::api
