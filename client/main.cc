// attune: the command-line client of attuned.
//
//   attune [--server ADDR] [--output text|json] COMMAND ...
//
// Commands: submit, list, get, watch, cancel, download, health. Exit codes: 0 success;
// 1 other errors (and `watch` of a job that FAILED or was CANCELLED); 2 usage errors and
// INVALID_ARGUMENT; 3 NOT_FOUND; 4 server unavailable.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/adapter_download.h"
#include "client/attune_client.h"
#include "client/job_spec_input.h"
#include "client/job_text.h"

namespace attune::client {
namespace {

constexpr char kExitCodes[] =
    "Exit codes: 0 success; 1 other errors, or `watch` of a job that FAILED or was CANCELLED;\n"
    "2 usage error or INVALID_ARGUMENT; 3 NOT_FOUND; 4 server unavailable.\n"
    "The server address defaults to $ATTUNE_SERVER, else 127.0.0.1:50051.";

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return 0;
    case absl::StatusCode::kInvalidArgument: return 2;
    case absl::StatusCode::kNotFound: return 3;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded: return 4;
    default: return 1;
  }
}

int Fail(const absl::Status& status) {
  std::cerr << "attune: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
            << "\n";
  return ExitCodeFor(status);
}

// The flags of `attune submit`, one per JobSpec field.
struct SubmitFlags {
  std::string config, model, train, validation, task, targets, method, schedule, name, request_id;
  std::vector<std::string> lr_ratios, labels;
  int rank = 0, epochs = 0, batch_size = 0, max_seq_len = 0, keep_checkpoints = 0, gpus = 0,
      priority = 0;
  double alpha = 0, dropout = 0, lr = 0, loraplus_ratio = 0, weight_decay = 0, max_grad_norm = 0;
  bool rslora = false;
  int64_t max_steps = 0, warmup_steps = 0, eval_every = 0, checkpoint_every = 0;
  uint64_t seed = 0;
};

void AddSubmitFlags(CLI::App* cmd, SubmitFlags* f) {
  // A flag given twice keeps its last value (scripts append overrides); lists keep them all.
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--config", f->config, "YAML file with the job (flags override it)");
  cmd->add_option("--model", f->model, "Hugging Face model directory");
  cmd->add_option("--train", f->train, "training data, JSONL");
  cmd->add_option("--validation", f->validation, "validation data, JSONL");
  cmd->add_option("--task", f->task, "classification|regression|causal-lm");
  cmd->add_option("--targets", f->targets, "projections to train, e.g. q,v (default q,v)");
  cmd->add_option("--method", f->method, "lora|full (default lora)");
  cmd->add_option("--rank", f->rank, "LoRA rank r (default 8)");
  cmd->add_option("--alpha", f->alpha, "LoRA alpha (default 16)");
  cmd->add_option("--dropout", f->dropout, "LoRA dropout in [0,1) (default 0)");
  cmd->add_flag("--rslora", f->rslora, "rank-stabilised scaling alpha/sqrt(r)");
  cmd->add_option("--lr", f->lr, "base learning rate (default 1e-4)");
  cmd->add_option("--lr-ratio", f->lr_ratios, "projection=multiplier[,...], e.g. v=4")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--loraplus-ratio", f->loraplus_ratio, "lr(B)/lr(A) (default 1)");
  cmd->add_option("--epochs", f->epochs, "passes over the data (default 1)");
  cmd->add_option("--max-steps", f->max_steps, "steps in all; overrides --epochs");
  cmd->add_option("--batch-size", f->batch_size, "examples per step (default 16)");
  cmd->add_option("--max-seq-len", f->max_seq_len, "truncation length in tokens (default 128)");
  cmd->add_option("--warmup-steps", f->warmup_steps, "linear warmup steps (default 0)");
  cmd->add_option("--schedule", f->schedule, "linear|cosine|constant (default linear)");
  cmd->add_option("--weight-decay", f->weight_decay, "AdamW weight decay (default 0)");
  cmd->add_option("--max-grad-norm", f->max_grad_norm, "gradient clipping, 0 = off (default 1)");
  cmd->add_option("--seed", f->seed, "random seed (default 42)");
  cmd->add_option("--checkpoint-every", f->checkpoint_every, "steps between checkpoints");
  cmd->add_option("--eval-every", f->eval_every, "steps between evaluations (0 = each epoch)");
  cmd->add_option("--keep-checkpoints", f->keep_checkpoints, "recent checkpoints kept (default 3)");
  cmd->add_option("--gpus", f->gpus, "GPUs wanted (default 0 = one CPU slot)");
  cmd->add_option("--priority", f->priority, "higher runs first (default 0)");
  cmd->add_option("--name", f->name, "a name for people");
  cmd->add_option("--label", f->labels, "key=value, repeatable")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--request-id", f->request_id, "idempotency key: a retry returns the same job");
}

absl::StatusOr<v1::CreateJobRequest> BuildCreateRequest(const CLI::App& cmd, const SubmitFlags& f) {
  v1::JobSpec spec;
  if (!f.config.empty()) {
    auto from_file = JobSpecFromYamlFile(f.config);
    if (!from_file.ok()) return from_file.status();
    spec = *std::move(from_file);
  }
  const std::string cwd = std::filesystem::current_path().string();
  auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
  if (given("--model")) spec.set_model(AbsolutePath(f.model, cwd));
  if (given("--train")) spec.set_train(AbsolutePath(f.train, cwd));
  if (given("--validation")) spec.set_validation(AbsolutePath(f.validation, cwd));
  if (given("--task")) {
    auto task = ParseTaskName(f.task);
    if (!task.ok()) return task.status();
    spec.set_task(*task);
  }
  if (given("--targets")) {
    spec.clear_targets();
    ParseTargets(f.targets, spec.mutable_targets());
  }
  if (given("--method")) {
    auto method = ParseMethodName(f.method);
    if (!method.ok()) return method.status();
    spec.set_method(*method);
  }
  if (given("--schedule")) {
    auto schedule = ParseScheduleName(f.schedule);
    if (!schedule.ok()) return schedule.status();
    spec.set_schedule(*schedule);
  }
  if (given("--rank")) spec.mutable_lora()->set_rank(f.rank);
  if (given("--alpha")) spec.mutable_lora()->set_alpha(f.alpha);
  if (given("--dropout")) spec.mutable_lora()->set_dropout(f.dropout);
  if (given("--rslora")) spec.mutable_lora()->set_use_rslora(f.rslora);
  if (given("--lr")) spec.set_learning_rate(f.lr);
  for (const std::string& item : f.lr_ratios) {
    absl::Status status = ParseRatioList(item, spec.mutable_lr_ratios());
    if (!status.ok()) return status;
  }
  if (given("--loraplus-ratio")) spec.set_loraplus_ratio(f.loraplus_ratio);
  if (given("--epochs")) spec.set_epochs(f.epochs);
  if (given("--max-steps")) spec.set_max_steps(f.max_steps);
  if (given("--batch-size")) spec.set_batch_size(f.batch_size);
  if (given("--max-seq-len")) spec.set_max_seq_len(f.max_seq_len);
  if (given("--warmup-steps")) spec.set_warmup_steps(f.warmup_steps);
  if (given("--weight-decay")) spec.set_weight_decay(f.weight_decay);
  if (given("--max-grad-norm")) spec.set_max_grad_norm(f.max_grad_norm);
  if (given("--seed")) spec.set_seed(f.seed);
  if (given("--checkpoint-every")) spec.set_checkpoint_every(f.checkpoint_every);
  if (given("--eval-every")) spec.set_eval_every(f.eval_every);
  if (given("--keep-checkpoints")) spec.set_keep_checkpoints(f.keep_checkpoints);
  if (given("--gpus")) spec.set_gpus(f.gpus);
  if (given("--priority")) spec.set_priority(f.priority);
  if (given("--name")) spec.set_name(f.name);
  for (const std::string& label : f.labels) {
    absl::Status status = ParseLabel(label, spec.mutable_labels());
    if (!status.ok()) return status;
  }
  v1::CreateJobRequest request;
  *request.mutable_spec() = std::move(spec);
  request.set_request_id(f.request_id);
  return request;
}

// Follows a job. Prints a progress bar on a terminal, plain lines otherwise, JSON per line with
// --output json. Returns 0 when the job SUCCEEDED, 1 when it failed or was cancelled.
int Watch(AttuneClient& client, const std::string& job_id, int64_t from_sequence, bool json) {
  const bool tty = !json && isatty(STDOUT_FILENO);
  v1::JobState final_state = v1::JOB_STATE_UNSPECIFIED;
  auto start = std::chrono::steady_clock::now();
  int64_t first_step = -1;
  bool bar_shown = false;
  absl::Status status = client.WatchJob(job_id, from_sequence, [&](const v1::JobEvent& event) {
    if (event.has_state_change()) final_state = event.state_change().state();
    if (json) {
      std::cout << ToJson(event) << std::endl;
      return true;
    }
    if (tty && event.has_step()) {
      const auto& s = event.step();
      auto now = std::chrono::steady_clock::now();
      if (first_step < 0) {
        first_step = s.step();
        start = now;
      }
      double elapsed = std::chrono::duration<double>(now - start).count();
      double eta = s.step() > first_step
                       ? elapsed / (s.step() - first_step) * (s.total_steps() - s.step())
                       : -1;
      std::cout << "\r" << ProgressBar(s.step(), s.total_steps(), s.train_loss(), eta, 30)
                << "   " << std::flush;
      bar_shown = true;
      return true;
    }
    if (tty && bar_shown) std::cout << "\n";
    bar_shown = false;
    std::cout << EventLine(event) << std::endl;
    return true;
  });
  if (bar_shown) std::cout << "\n";
  if (!status.ok()) return Fail(status);
  if (final_state == v1::JOB_STATE_UNSPECIFIED || final_state == v1::QUEUED ||
      final_state == v1::RUNNING) {
    // The stream ended without a terminal event in this window: ask for the state.
    auto job = client.GetJob(job_id);
    if (!job.ok()) return Fail(job.status());
    final_state = job->state();
  }
  return final_state == v1::SUCCEEDED ? 0 : 1;
}

int Run(int argc, char** argv) {
  CLI::App app{"attune: submit and follow LoRA fine-tuning jobs on an attuned server"};
  app.footer(kExitCodes);
  app.require_subcommand(1);
  const char* env_server = std::getenv("ATTUNE_SERVER");
  std::string server = env_server && *env_server ? env_server : "127.0.0.1:50051";
  std::string output = "text";
  app.add_option("--server", server, "attuned address HOST:PORT");
  app.add_option("--output", output, "text|json (proto3 JSON mapping)")
      ->check(CLI::IsMember({"text", "json"}));

  SubmitFlags submit_flags;
  CLI::App* submit = app.add_subcommand("submit", "create a job; prints its id");
  AddSubmitFlags(submit, &submit_flags);

  std::string state_filter;
  int page_size = 0;
  CLI::App* list = app.add_subcommand("list", "list jobs, newest first");
  list->add_option("--state", state_filter, "QUEUED|RUNNING|SUCCEEDED|FAILED|CANCELLED");
  list->add_option("--page-size", page_size, "jobs per request (default 100)");

  std::string job_id;
  CLI::App* get = app.add_subcommand("get", "show one job");
  get->add_option("ID", job_id, "job id")->required();

  int64_t from_sequence = 0;
  CLI::App* watch = app.add_subcommand("watch", "follow a job; exit 0 only if it SUCCEEDED");
  watch->add_option("ID", job_id, "job id")->required();
  watch->add_option("--from-sequence", from_sequence, "only events after this sequence");

  CLI::App* cancel = app.add_subcommand("cancel", "cancel a job");
  cancel->add_option("ID", job_id, "job id")->required();

  DownloadOptions download_options;
  CLI::App* download = app.add_subcommand(
      "download", "download an adapter into DIR (verified, atomic, resumable)");
  download->add_option("ID", download_options.job_id, "job id")->required();
  download->add_option("-o,--output-dir", download_options.dir, "destination directory")
      ->required();
  download->add_option("--checkpoint", download_options.checkpoint, "latest|best|step:N");
  download->add_flag("--include-resume-state", download_options.include_resume_state,
                     "also fetch the optimizer/RNG resume state");

  std::string health_service;
  CLI::App* health = app.add_subcommand("health", "ask grpc.health.v1.Health; exit 0 if SERVING");
  health->add_option("--service", health_service, "service name (default: the whole server)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  const bool json = output == "json";
  AttuneClient client(server);

  if (*submit) {
    auto request = BuildCreateRequest(*submit, submit_flags);
    if (!request.ok()) return Fail(request.status());
    auto job = client.CreateJob(*request);
    if (!job.ok()) return Fail(job.status());
    std::cout << (json ? ToJson(*job) : job->id()) << std::endl;
    return 0;
  }
  if (*list) {
    v1::ListJobsRequest request;
    if (!state_filter.empty()) {
      v1::JobState state;
      if (!v1::JobState_Parse(state_filter, &state)) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            "--state: unknown state '", state_filter,
            "'; expected one of QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED")));
      }
      request.set_state(state);
    }
    request.set_page_size(page_size);
    do {
      auto page = client.ListJobs(request);
      if (!page.ok()) return Fail(page.status());
      for (const v1::Job& job : page->jobs()) {
        std::cout << (json ? ToJson(job) : JobListLine(job)) << "\n";
      }
      request.set_page_token(page->next_page_token());
    } while (!request.page_token().empty());
    std::cout << std::flush;
    return 0;
  }
  if (*get) {
    auto job = client.GetJob(job_id);
    if (!job.ok()) return Fail(job.status());
    std::cout << (json ? ToJson(*job) + "\n" : JobSummary(*job)) << std::flush;
    return 0;
  }
  if (*watch) return Watch(client, job_id, from_sequence, json);
  if (*cancel) {
    auto job = client.CancelJob(job_id);
    if (!job.ok()) return Fail(job.status());
    std::cout << (json ? ToJson(*job) : job->id() + " " + StateName(job->state())) << std::endl;
    return 0;
  }
  if (*download) {
    if (!json && isatty(STDERR_FILENO)) {
      download_options.on_progress = [](int64_t done, int64_t total) {
        double fraction = total > 0 ? static_cast<double>(done) / total : 1.0;
        int filled = static_cast<int>(fraction * 30);
        std::cerr << "\r[" << std::string(filled, '#') << std::string(30 - filled, '.') << "] "
                  << HumanBytes(done) << " / " << HumanBytes(total) << std::flush;
      };
    }
    auto result = DownloadAdapterTo(client, download_options);
    if (download_options.on_progress) std::cerr << "\n";
    if (!result.ok()) return Fail(result.status());
    if (json) {
      std::cout << absl::StrFormat(
                       R"({"jobId":"%s","step":"%d","dir":"%s","bytes":"%d","sha256":"%s"})",
                       download_options.job_id, result->step,
                       std::filesystem::absolute(download_options.dir).string(), result->bytes,
                       result->sha256)
                << std::endl;
    } else {
      std::cout << "downloaded step " << result->step << " of " << download_options.job_id
                << " to " << std::filesystem::absolute(download_options.dir).string() << " ("
                << result->file_count << " files, " << HumanBytes(result->bytes)
                << ", sha256 " << result->sha256 << ")" << std::endl;
    }
    return 0;
  }
  if (*health) {
    auto state = client.CheckHealth(health_service);
    if (!state.ok()) return Fail(state.status());
    std::cout << *state << std::endl;
    return *state == "SERVING" ? 0 : 1;
  }
  return 2;
}

}  // namespace
}  // namespace attune::client

int main(int argc, char** argv) { return attune::client::Run(argc, argv); }
