#include "client/submit_command.h"

#include <filesystem>
#include <utility>

#include "client/job_spec_input.h"
#include "common/status_macros.h"

namespace attune::client {
namespace {

// The enum-valued flags, parsed from their short names.
absl::Status ApplyEnumFlags(const CLI::App& cmd, const SubmitFlags& f, v1::JobSpec* spec) {
  auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
  if (given("--task")) {
    ASSIGN_OR_RETURN(v1::Task task, ParseTaskName(f.task));
    spec->set_task(task);
  }
  if (given("--method")) {
    ASSIGN_OR_RETURN(v1::Method method, ParseMethodName(f.method));
    spec->set_method(method);
  }
  if (given("--schedule")) {
    ASSIGN_OR_RETURN(v1::Schedule schedule, ParseScheduleName(f.schedule));
    spec->set_schedule(schedule);
  }
  if (given("--eval-metric")) {
    ASSIGN_OR_RETURN(v1::EvalMetric metric, ParseEvalMetricName(f.eval_metric));
    spec->set_eval_metric(metric);
  }
  return absl::OkStatus();
}

// The LoRA and optimizer flags.
absl::Status ApplyTrainingFlags(const CLI::App& cmd, const SubmitFlags& f, v1::JobSpec* spec) {
  auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
  if (given("--targets")) {
    spec->clear_targets();
    ParseTargets(f.targets, spec->mutable_targets());
  }
  if (given("--rank")) spec->mutable_lora()->set_rank(f.rank);
  if (given("--alpha")) spec->mutable_lora()->set_alpha(f.alpha);
  if (given("--dropout")) spec->mutable_lora()->set_dropout(f.dropout);
  if (given("--rslora")) spec->mutable_lora()->set_use_rslora(f.rslora);
  if (given("--lr")) spec->set_learning_rate(f.lr);
  for (const std::string& item : f.lr_ratios) {
    RETURN_IF_ERROR(ParseRatioList(item, spec->mutable_lr_ratios()));
  }
  if (given("--loraplus-ratio")) spec->set_loraplus_ratio(f.loraplus_ratio);
  if (given("--weight-decay")) spec->set_weight_decay(f.weight_decay);
  if (given("--max-grad-norm")) spec->set_max_grad_norm(f.max_grad_norm);
  if (given("--seed")) spec->set_seed(f.seed);
  return absl::OkStatus();
}

// How long the job runs, how often it evaluates and checkpoints, and where it runs.
void ApplyScheduleFlags(const CLI::App& cmd, const SubmitFlags& f, v1::JobSpec* spec) {
  auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
  if (given("--epochs")) spec->set_epochs(f.epochs);
  if (given("--max-steps")) spec->set_max_steps(f.max_steps);
  if (given("--batch-size")) spec->set_batch_size(f.batch_size);
  if (given("--max-seq-len")) spec->set_max_seq_len(f.max_seq_len);
  if (given("--packing")) spec->set_packing(f.packing == "on");
  if (given("--tokens-per-step")) spec->set_tokens_per_step(f.tokens_per_step);
  if (given("--train-on-inputs")) spec->set_train_on_inputs(f.train_on_inputs);
  if (given("--warmup-steps")) spec->set_warmup_steps(f.warmup_steps);
  if (given("--checkpoint-every")) spec->set_checkpoint_every(f.checkpoint_every);
  if (given("--eval-every")) spec->set_eval_every(f.eval_every);
  if (given("--keep-checkpoints")) spec->set_keep_checkpoints(f.keep_checkpoints);
  if (given("--early-stopping-patience")) {
    spec->set_early_stopping_patience(f.early_stopping_patience);
  }
  // Not given = unset, so that the server picks (one GPU when it has any, else a CPU slot).
  if (given("--gpus")) spec->set_gpus(f.gpus);
  if (given("--ranks")) spec->set_ranks(f.ranks);
  if (given("--priority")) spec->set_priority(f.priority);
  if (given("--max-retries")) spec->set_max_retries(f.max_retries);
}

}  // namespace

void AddSubmitFlags(CLI::App* cmd, SubmitFlags* f) {
  // A flag given twice keeps its last value (scripts append overrides); lists keep them all.
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--config", f->config, "YAML file with the job (flags override it)");
  cmd->add_option("--model", f->model, "Hugging Face model directory");
  cmd->add_option("--train", f->train, "training data, JSONL");
  cmd->add_option("--validation", f->validation, "validation data, JSONL");
  cmd->add_option("--task", f->task, "classification|regression|causal-lm");
  cmd->add_option("--targets", f->targets, "projections to train, e.g. q,v (default q,v)");
  cmd->add_option("--method", f->method, "lora|dora|full (default lora)");
  cmd->add_option("--rank", f->rank, "LoRA rank r (default 8)");
  cmd->add_option("--alpha", f->alpha, "LoRA alpha (default 16)");
  cmd->add_option("--dropout", f->dropout, "LoRA dropout in [0,1) (default 0)");
  cmd->add_flag("--rslora", f->rslora, "rank-stabilised scaling alpha/sqrt(r)");
  cmd->add_option("--lr", f->lr, "base learning rate (default 1e-3)");
  cmd->add_option(
         "--lr-ratio", f->lr_ratios,
         "projection=multiplier[,...], e.g. v=4 (default: v=4 for LoRA on exactly q,v; else 1)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--loraplus-ratio", f->loraplus_ratio, "lr(B)/lr(A) (default 1)");
  cmd->add_option("--epochs", f->epochs, "passes over the data (default 1)");
  cmd->add_option("--max-steps", f->max_steps, "steps in all; overrides --epochs");
  cmd->add_option("--batch-size", f->batch_size, "examples per step (default 16)");
  cmd->add_option("--max-seq-len", f->max_seq_len, "truncation length in tokens (default 128)");
  cmd->add_option("--packing", f->packing,
                  "on|off: pack examples into rows of max-seq-len tokens, no attention across "
                  "them (default on; a step is then about --batch-size examples)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option(
      "--tokens-per-step", f->tokens_per_step,
      "packed tokens per step (default: the rows that hold about --batch-size examples)");
  cmd->add_flag("--train-on-inputs", f->train_on_inputs,
                "chat records: train on every token, not only the assistant's turns");
  cmd->add_option("--warmup-steps", f->warmup_steps, "linear warmup steps (default 0)");
  cmd->add_option("--schedule", f->schedule, "linear|cosine|constant (default linear)");
  cmd->add_option("--weight-decay", f->weight_decay, "AdamW weight decay (default 0)");
  cmd->add_option("--max-grad-norm", f->max_grad_norm, "gradient clipping, 0 = off (default 1)");
  cmd->add_option("--seed", f->seed, "random seed (default 42)");
  cmd->add_option("--checkpoint-every", f->checkpoint_every, "steps between checkpoints");
  cmd->add_option("--eval-every", f->eval_every, "steps between evaluations (0 = each epoch)");
  cmd->add_option("--keep-checkpoints", f->keep_checkpoints, "recent checkpoints kept (default 3)");
  cmd->add_option("--eval-metric", f->eval_metric,
                  "accuracy|f1|mcc|pearson|spearman|loss: ranks checkpoints and decides early "
                  "stopping (default: accuracy for classification, pearson for regression)");
  cmd->add_option("--early-stopping-patience", f->early_stopping_patience,
                  "stop after this many evaluations without a better eval metric, keeping the "
                  "best checkpoint (default 0 = off)");
  cmd->add_option("--gpus", f->gpus,
                  "GPUs wanted: 0 = a CPU slot, N = N GPUs (default: one GPU if the server "
                  "has any, else a CPU slot)");
  cmd->add_option("--ranks", f->ranks,
                  "processes of data-parallel training, one per device slot: with --gpus N it "
                  "must be N; on the CPU it takes N CPU slots (default: --gpus, or 1 on the CPU)");
  cmd->add_option("--priority", f->priority, "higher runs first (default 0)");
  cmd->add_option("--max-retries", f->max_retries,
                  "restarts from the last checkpoint after a crash (not an input error), with a "
                  "doubling backoff (default 2)");
  cmd->add_option("--name", f->name, "a name for people");
  cmd->add_option("--label", f->labels, "key=value, repeatable")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--request-id", f->request_id, "idempotency key: a retry returns the same job");
}

absl::StatusOr<v1::CreateJobRequest> BuildCreateRequest(const CLI::App& cmd, const SubmitFlags& f) {
  v1::JobSpec spec;
  if (!f.config.empty()) {
    ASSIGN_OR_RETURN(spec, JobSpecFromYamlFile(f.config));
  }
  const std::string cwd = std::filesystem::current_path().string();
  auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
  if (given("--model")) spec.set_model(AbsolutePath(f.model, cwd));
  if (given("--train")) spec.set_train(AbsolutePath(f.train, cwd));
  if (given("--validation")) spec.set_validation(AbsolutePath(f.validation, cwd));
  RETURN_IF_ERROR(ApplyEnumFlags(cmd, f, &spec));
  RETURN_IF_ERROR(ApplyTrainingFlags(cmd, f, &spec));
  ApplyScheduleFlags(cmd, f, &spec);
  if (given("--name")) spec.set_name(f.name);
  for (const std::string& label : f.labels) {
    RETURN_IF_ERROR(ParseLabel(label, spec.mutable_labels()));
  }
  v1::CreateJobRequest request;
  *request.mutable_spec() = std::move(spec);
  request.set_request_id(f.request_id);
  return request;
}

}  // namespace attune::client
