// attune: the command-line client of attuned.
//
//   attune [--server ADDR] [--output text|json] COMMAND ...
//
// Commands: submit, sweep, compare, list, get, watch, cancel, pause, resume, checkpoints,
// delete, download, health, render, token create.
// The token comes from --token, else $ATTUNE_TOKEN; --tls-ca makes the connection
// TLS (--tls-cert/--tls-key add a client certificate for mutual TLS). Exit codes: 0 success;
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
#include "client/job_commands.h"
#include "client/job_spec_input.h"
#include "client/job_text.h"
#include "client/lifecycle_commands.h"
#include "client/progress_bar.h"
#include "client/submit_command.h"
#include "client/sweep_command.h"
#include "client/sweep_input.h"
#include "client/sweep_table_text.h"
#include "client/token_command.h"
#include "client/tool_command.h"
#include "common/status_macros.h"

namespace attune::client {
namespace {

constexpr char kExitCodes[] =
    "Exit codes: 0 success; 1 other errors, or `watch` of a job that FAILED or was CANCELLED;\n"
    "2 usage error or INVALID_ARGUMENT; 3 NOT_FOUND; 4 server unavailable.\n"
    "The server address defaults to $ATTUNE_SERVER, else 127.0.0.1:50051.";

// The options of sweep and compare (list and watch: job_commands.h; submit and download have
// their own structs).
struct SweepOptions {
  std::string config;    // the sweep file (client/sweep_input.h)
  std::string sweep_id;  // "" = derived from the file's jobs
};
struct CompareOptions {
  std::string sweep_id;
  std::string metric;  // "" = the jobs' dev metric (accuracy, else loss)
};

// Submits the grid; prints the sweep id (text) or {"sweepId", "jobIds"} (json).
int RunSweep(AttuneClient& client, const SweepOptions& options, OutputFormat format) {
  absl::StatusOr<SweepPlan> plan = SweepPlanFromYamlFile(options.config, options.sweep_id);
  if (!plan.ok()) return Fail(plan.status());
  absl::StatusOr<std::vector<std::string>> ids = SubmitSweep(client, *plan);
  if (!ids.ok()) return Fail(ids.status());
  if (format == OutputFormat::kJson) {
    std::string list;
    for (const std::string& id : *ids)
      absl::StrAppend(&list, list.empty() ? "" : ",", "\"", id, "\"");
    std::cout << absl::StrFormat(R"({"sweepId":"%s","jobIds":[%s]})", plan->sweep_id, list)
              << std::endl;
    return 0;
  }
  std::cerr << "submitted " << ids->size() << " jobs" << std::endl;
  std::cout << plan->sweep_id << std::endl;
  return 0;
}

int RunCompare(AttuneClient& client, const CompareOptions& options, OutputFormat format) {
  absl::StatusOr<std::vector<SweepRun>> runs = FetchSweepRuns(client, options.sweep_id);
  if (!runs.ok()) return Fail(runs.status());
  absl::StatusOr<SweepTable> table = BuildSweepTable(options.sweep_id, *runs, options.metric);
  if (!table.ok()) return Fail(table.status());
  switch (format) {
    case OutputFormat::kJson:
      std::cout << SweepTableToJson(*table).dump() << std::endl;
      break;
    case OutputFormat::kCsv:
      std::cout << SweepTableCsv(*table) << std::flush;
      break;
    case OutputFormat::kText:
      std::cout << SweepTableText(*table) << std::flush;
      break;
  }
  return 0;
}

int RunSubmit(AttuneClient& client, const CLI::App& cmd, const SubmitFlags& flags,
              OutputFormat format) {
  absl::StatusOr<v1::CreateJobRequest> request = BuildCreateRequest(cmd, flags);
  if (!request.ok()) return Fail(request.status());
  absl::StatusOr<v1::Job> job = client.CreateJob(*request);
  if (!job.ok()) return Fail(job.status());
  std::cout << (format == OutputFormat::kJson ? ToJson(*job) : job->id()) << std::endl;
  return 0;
}

// Everything the command line says, filled by CLI11 in main.
struct CommandLine {
  std::string server;           // attuned address HOST:PORT
  std::string output = "text";  // "text" or "json"
  SubmitFlags submit;
  SweepOptions sweep;
  CompareOptions compare;
  ListOptions list;
  std::string job_id;  // get, cancel, checkpoints, delete
  WatchOptions watch;
  DownloadOptions download;
  std::string health_service;  // "" = the whole server
  ClientOptions connection;    // token and TLS files
  std::string token_tenant = "default";
  bool token_admin = false;
  // The subcommands, owned by the CLI::App.
  CLI::App* submit_cmd = nullptr;
  CLI::App* sweep_cmd = nullptr;
  CLI::App* compare_cmd = nullptr;
  CLI::App* list_cmd = nullptr;
  CLI::App* get_cmd = nullptr;
  CLI::App* watch_cmd = nullptr;
  CLI::App* cancel_cmd = nullptr;
  CLI::App* pause_cmd = nullptr;
  CLI::App* resume_cmd = nullptr;
  CLI::App* checkpoints_cmd = nullptr;
  CLI::App* delete_cmd = nullptr;
  CLI::App* download_cmd = nullptr;
  CLI::App* health_cmd = nullptr;
  CLI::App* token_create_cmd = nullptr;
  CLI::App* render_cmd = nullptr;
};

// `attune token create`: the token on the first line, its tokens-file line on the second.
int RunTokenCreate(const CommandLine& c) {
  absl::StatusOr<std::string> token = NewToken();
  if (!token.ok()) return Fail(token.status());
  absl::StatusOr<std::string> line =
      TokenLine(*token, c.token_tenant, c.token_admin ? TokenRole::kAdmin : TokenRole::kTenant);
  if (!line.ok()) return Fail(line.status());
  std::cout << *token << "\n" << *line << std::endl;
  return 0;
}

void AddQueryCommands(CLI::App* app, CommandLine* c) {
  c->list_cmd = app->add_subcommand("list", "list jobs, newest first");
  c->list_cmd->add_option("--state", c->list.state,
                          "QUEUED|RUNNING|PAUSED|SUCCEEDED|FAILED|CANCELLED");
  c->list_cmd->add_option("--page-size", c->list.page_size, "jobs per request (default 100)");
  c->list_cmd->add_option("--label", c->list.labels,
                          "key=value: only jobs with this label (repeatable; all must match), "
                          "e.g. attune.sweep=SWEEP_ID");
  c->get_cmd = app->add_subcommand("get", "show one job");
  c->get_cmd->add_option("ID", c->job_id, "job id")->required();
  c->watch_cmd = app->add_subcommand("watch", "follow a job; exit 0 only if it SUCCEEDED");
  c->watch_cmd->add_option("ID", c->watch.job_id, "job id")->required();
  c->watch_cmd->add_option("--from-sequence", c->watch.from_sequence,
                           "only events after this sequence");
  c->cancel_cmd = app->add_subcommand("cancel", "cancel a job");
  c->cancel_cmd->add_option("ID", c->job_id, "job id")->required();
  c->pause_cmd = app->add_subcommand(
      "pause", "pause a job: it checkpoints, frees its devices and keeps its place (PAUSED)");
  c->pause_cmd->add_option("ID", c->job_id, "job id")->required();
  c->resume_cmd =
      app->add_subcommand("resume", "queue a PAUSED job again; it continues from its checkpoint");
  c->resume_cmd->add_option("ID", c->job_id, "job id")->required();
  c->checkpoints_cmd = app->add_subcommand(
      "checkpoints",
      "list a job's checkpoints: step, train loss, eval metric, best, bytes, sha256");
  c->checkpoints_cmd->add_option("ID", c->job_id, "job id")->required();
  c->delete_cmd = app->add_subcommand(
      "delete",
      "delete a finished job with its checkpoints on the server (cancel a live one first)");
  c->delete_cmd->add_option("ID", c->job_id, "job id")->required();
  c->health_cmd = app->add_subcommand("health", "ask grpc.health.v1.Health; exit 0 if SERVING");
  c->health_cmd->add_option("--service", c->health_service,
                            "service name (default: the whole server)");
}

void AddSweepCommands(CLI::App* app, CommandLine* c) {
  c->sweep_cmd = app->add_subcommand(
      "sweep",
      "submit a grid of jobs from a --config file with `grid: {field: [values...]}`; prints the "
      "sweep id (json: the job ids too). Each job is labelled attune.sweep=ID and "
      "attune.grid.FIELD=VALUE; submitting the same file again creates nothing new");
  c->sweep_cmd->add_option("--config", c->sweep.config, "YAML: the job's fields plus grid:")
      ->required();
  c->sweep_cmd->add_option("--sweep-id", c->sweep.sweep_id,
                           "the sweep's id (default: derived from the file's jobs)");
  c->compare_cmd = app->add_subcommand(
      "compare",
      "table of a sweep by configuration (grid fields but the seed): mean +- std over seeds of "
      "the best dev metric, trainable parameters, adapter bytes, wall time, steps to 90% of the "
      "train-loss reduction and the eval curve's area per step; --output text|json|csv");
  c->compare_cmd->add_option("SWEEP_ID", c->compare.sweep_id, "sweep id")->required();
  c->compare_cmd->add_option("--metric", c->compare.metric,
                             "dev metric: accuracy|loss|pearson|spearman|perplexity (default: "
                             "accuracy, else loss)");
}

void AddCommands(CLI::App* app, CommandLine* c) {
  app->footer(kExitCodes);
  app->require_subcommand(1);
  app->fallthrough();  // --server and --output work after the command too, as in kubectl
  app->add_option("--server", c->server, "attuned address HOST:PORT");
  app->add_option("--output", c->output, "text|json (proto3 JSON mapping)|csv (compare only)")
      ->check(CLI::IsMember({"text", "json", "csv"}));
  app->add_option("--token", c->connection.token, "bearer token (default: $ATTUNE_TOKEN)");
  app->add_option("--tls-ca", c->connection.tls_ca_path, "PEM CA of the server's certificate");
  app->add_option("--tls-cert", c->connection.tls_cert_path, "PEM client certificate (mTLS)");
  app->add_option("--tls-key", c->connection.tls_key_path, "PEM key of --tls-cert");
  CLI::App* token_cmd = app->add_subcommand("token", "make tokens for attuned --auth-tokens");
  token_cmd->require_subcommand(1);
  c->token_create_cmd =
      token_cmd->add_subcommand("create", "print a new token and its line for the tokens file");
  c->token_create_cmd->add_option("--tenant", c->token_tenant, "tenant (default: default)");
  c->token_create_cmd->add_flag("--admin", c->token_admin, "the token sees every tenant");
  c->render_cmd = app->add_subcommand(
      "render",
      "what a chat record becomes for the model, on this machine (no server): --model DIR "
      "--data FILE [--record N] [--train-on-inputs]; runs attune-render (render --help)");
  c->render_cmd->fallthrough(false)->prefix_command();  // all after `render` goes to attune-render
  c->render_cmd->set_help_flag();
  c->submit_cmd = app->add_subcommand("submit", "create a job; prints its id");
  AddSubmitFlags(c->submit_cmd, &c->submit);
  AddSweepCommands(app, c);
  AddQueryCommands(app, c);
  c->download_cmd =
      app->add_subcommand("download", "download an adapter into DIR (verified, atomic, resumable)");
  c->download_cmd->add_option("ID", c->download.job_id, "job id")->required();
  c->download_cmd->add_option("-o,--output-dir", c->download.dir, "destination directory")
      ->required();
  c->download_cmd->add_option("--checkpoint", c->download.checkpoint, "latest|best|step:N");
  c->download_cmd->add_flag("--include-resume-state", c->download.include_resume_state,
                            "also fetch the optimizer/RNG resume state");
}

// Runs the one subcommand given. Returns the process's exit code.
int Dispatch(const CommandLine& c) {
  const OutputFormat format = c.output == "json"  ? OutputFormat::kJson
                              : c.output == "csv" ? OutputFormat::kCsv
                                                  : OutputFormat::kText;
  if (format == OutputFormat::kCsv && !*c.compare_cmd) {
    return Fail(absl::InvalidArgumentError("--output: csv is only for compare; use text or json"));
  }
  if (*c.token_create_cmd) return RunTokenCreate(c);
  if (*c.render_cmd) return ExecSiblingProgram("attune-render", c.render_cmd->remaining());
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentialsFor(c.connection);
  if (!credentials.ok()) return Fail(credentials.status());
  AttuneClient client(c.server, *std::move(credentials), c.connection.token);
  if (*c.submit_cmd) return RunSubmit(client, *c.submit_cmd, c.submit, format);
  if (*c.sweep_cmd) return RunSweep(client, c.sweep, format);
  if (*c.compare_cmd) return RunCompare(client, c.compare, format);
  if (*c.list_cmd) return RunList(client, c.list, format);
  if (*c.get_cmd) return RunGet(client, c.job_id, format);
  if (*c.watch_cmd) return RunWatch(client, c.watch, format);
  if (*c.cancel_cmd) return RunJobChange(client.CancelJob(c.job_id), format);
  if (*c.pause_cmd) return RunJobChange(client.PauseJob(c.job_id), format);
  if (*c.resume_cmd) return RunJobChange(client.ResumeJob(c.job_id), format);
  const ResultFormat result_format =
      format == OutputFormat::kJson ? ResultFormat::kJson : ResultFormat::kText;
  if (*c.checkpoints_cmd) return Finish(RunCheckpoints(client, c.job_id, result_format, std::cout));
  if (*c.delete_cmd) return Finish(RunDelete(client, c.job_id, result_format, std::cout));
  if (*c.download_cmd) return RunDownload(client, c.download, format);
  if (*c.health_cmd) return RunHealth(client, c.health_service);
  return 2;
}

}  // namespace
}  // namespace attune::client

int main(int argc, char** argv) {
  attune::client::CommandLine command_line;
  const char* env_server = std::getenv("ATTUNE_SERVER");
  command_line.server = env_server && *env_server ? env_server : "127.0.0.1:50051";
  const char* env_token = std::getenv("ATTUNE_TOKEN");
  if (env_token != nullptr) command_line.connection.token = env_token;
  CLI::App app{"attune: submit and follow LoRA fine-tuning jobs on an attuned server"};
  attune::client::AddCommands(&app, &command_line);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return attune::client::Dispatch(command_line);
}
