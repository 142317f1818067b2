// attune-bench: times the training engine on one job, without gRPC, and prints JSON.
//
// It calls engine::RunTraining directly with an observer that records every step's loss and the
// wall clock, so what it measures is the engine alone: data -> model -> AdamW -> loop. The JSON
// (one object on stdout) holds:
//   ms_per_step     wall time of the timed steps (after --timing-warmup steps) divided by their
//                   number; the device is synchronised at both ends of that window. This is a
//                   mean over the window, not a median of single steps: the engine queues steps
//                   on the GPU without waiting for each one, so a single step has no wall time
//                   of its own.
//   steps_per_s, tokens_per_s (non-padding tokens), samples_per_s: over the same window.
//   flops_per_token 4 * N + attention, N = every parameter of the model (base, adapters, head).
//                   With frozen weights a token costs 2N in the forward pass and 2N for the input
//                   gradients in the backward pass (no weight gradients except the small
//                   adapters). Attention adds 4 * L * T * d per token forward (Q K^T and P V,
//                   d = heads * head_dim, T = --seq-len) and twice that backward; a causal
//                   model does half of it: 6 * L * T * d causal, 12 * L * T * d bidirectional.
//   mfu_measured_peak   flops_per_token * tokens_per_s / 790e12: against 790 TFLOP/s, the
//                   dense bf16 matmul rate measured on the H200 (what a large matmul reaches).
//   mfu_datasheet_peak  the same against 989 TFLOP/s, the H200 datasheet's dense bf16 figure.
//                   Both only meaningful on CUDA.
//   peak_device_gib the CUDA caching allocator's peak allocated bytes over the whole run (as
//                   torch.cuda.max_memory_allocated); null on the CPU. peak_rss_gib: the
//                   process's peak resident memory.
//   losses          every step's training loss, in order.
//   profiled_steps  with --profile-trace: the steps recorded in the trace (after the warm-up);
//                   the profiler slows the host, so a profiled run's timing is not the benchmark's.
// It may include LibTorch (a benchmark, not part of the engine's interface): only to read the
// device's memory statistics (and, in bench_observer.cc, to synchronise it).
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#if defined(ATTUNE_BENCH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/bench_observer.h"
#include "bench/kineto_trace.h"
#include "common/job_spec.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "server/engine/trainer.h"

namespace attune::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Dense bf16 matmul rates of the H200: measured, and the datasheet's (see mfu_* above).
constexpr double kMeasuredPeakBf16FlopsPerSecond = 790e12;
constexpr double kDatasheetPeakBf16FlopsPerSecond = 989e12;

// Command-line options, gathered in main().
struct BenchOptions {
  TrainSpec spec;              // the job
  std::string device = "cpu";  // "cpu" or "cuda:N"
  int64_t timing_warmup = 5;   // steps left out of the timing window
  std::string output_dir;      // checkpoints; /tmp/attune_bench_<pid> when empty (kept)
  std::string label;           // free text copied into the JSON
  engine::SpeedOptions speed;  // the engine's speed switches (all on by default)
  std::string profile_trace;   // a Kineto trace of the steps after the warm-up; "" = none
  int64_t profile_steps = 5;   // how many steps it records
};

// Attention FLOPs per token (forward + backward) from config.json; see the file comment.
double AttentionFlopsPerToken(const std::string& model_dir, int64_t seq_len, Task task) {
  std::ifstream in(fs::path(model_dir) / "config.json");
  json config = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) return 0;
  const double layers = config.value("num_hidden_layers", 0);
  const double heads = config.value("num_attention_heads", 0);
  const double hidden = config.value("hidden_size", 0);
  const double head_dim = config.value("head_dim", heads > 0 ? hidden / heads : 0.0);
  const std::string type = config.value("model_type", "");
  const bool causal = type == "llama" || type == "qwen2" || type == "mistral";
  (void)task;
  const double per_layer = 12.0 * static_cast<double>(seq_len) * heads * head_dim;
  return layers * (causal ? per_layer / 2 : per_layer);
}

double PeakRssGib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0 / (1024.0 * 1024.0 * 1024.0);
}

json PeakDeviceGib(const std::string& device) {
#if defined(ATTUNE_BENCH_CUDA)
  if (device.rfind("cuda", 0) == 0) {
    const int index = device.size() > 5 ? std::stoi(device.substr(5)) : 0;
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0 * 1024.0);
  }
#endif
  (void)device;
  return json();
}

// The checkpoint directory: --output-dir, or /tmp/attune_bench_<pid>.
std::string OutputDir(const BenchOptions& options) {
  if (!options.output_dir.empty()) return options.output_dir;
  return (fs::temp_directory_path() / ("attune_bench_" + std::to_string(::getpid()))).string();
}

// --packed-attention's values.
const std::map<std::string, engine::PackedAttentionKernel>& PackedAttentionNames() {
  using K = engine::PackedAttentionKernel;
  static const auto* names = new std::map<std::string, K>{{"auto", K::kAuto},
                                                          {"flash", K::kFlashVarlen},
                                                          {"efficient", K::kEfficientVarlen},
                                                          {"mask", K::kBlockMask}};
  return *names;
}

std::string PackedAttentionName(engine::PackedAttentionKernel kernel) {
  for (const auto& [name, k] : PackedAttentionNames()) {
    if (k == kernel) return name;
  }
  return "?";
}

json SpeedJson(const engine::SpeedOptions& speed) {
  return {{"unmasked_attention", speed.unmasked_attention},
          {"chunked_lm_loss", speed.chunked_lm_loss},
          {"metrics_every", speed.metrics_every},
          {"pinned_batches", speed.pinned_batches},
          {"cuda_graphs", speed.cuda_graphs},
          {"fused_kernels", speed.fused_kernels},
          {"packed_attention", PackedAttentionName(speed.packed_attention)}};
}

// What was run: the job's settings and where it ran.
json JobJson(const BenchOptions& options, const std::string& output_dir) {
  return {
      {"program", "attune-bench"},
      {"label", options.label},
      {"speed", SpeedJson(options.speed)},
      {"device", options.device},
      {"model_dir", options.spec.model_dir},
      {"output_dir", output_dir},
      {"task", TaskName(options.spec.task)},
      {"batch_size", options.spec.batch_size},
      {"max_seq_len", options.spec.max_seq_len},
      {"packing", options.spec.packing},
      {"tokens_per_step", options.spec.tokens_per_step},
  };
}

// The timing window's rates and the model's size and FLOPs; see the file comment.
json ThroughputJson(const BenchOptions& options, const BenchObserver& observer,
                    const engine::TrainResult& result) {
  const double window_s =
      std::chrono::duration<double>(observer.window_end_ - observer.window_start_).count();
  const double steps = static_cast<double>(observer.window_steps_);
  const double flops_per_token =
      4.0 * static_cast<double>(result.total_parameters) +
      AttentionFlopsPerToken(options.spec.model_dir, options.spec.max_seq_len, options.spec.task);
  const double tokens_per_s = window_s > 0 ? observer.window_tokens_ / window_s : 0;
  return {
      {"steps", observer.total_steps_},
      {"timed_steps", observer.window_steps_},
      {"ms_per_step", steps > 0 ? 1000.0 * window_s / steps : 0},
      {"steps_per_s", window_s > 0 ? steps / window_s : 0},
      {"tokens_per_s", tokens_per_s},
      {"samples_per_s", window_s > 0 ? observer.window_samples_ / window_s : 0},
      {"total_parameters", result.total_parameters},
      {"trainable_parameters", result.trainable_parameters},
      {"flops_per_token", flops_per_token},
      {"mfu_measured_peak", flops_per_token * tokens_per_s / kMeasuredPeakBf16FlopsPerSecond},
      {"mfu_datasheet_peak", flops_per_token * tokens_per_s / kDatasheetPeakBf16FlopsPerSecond},
  };
}

// Every step's record, as the observer saw it.
json StepsJson(const BenchObserver& observer, const engine::TrainResult& result) {
  return {
      {"skipped_steps", observer.skipped_}, {"graph_replays", result.graph_replays},
      {"losses", observer.losses_},         {"grad_norms", observer.grad_norms_},
      {"warnings", observer.warnings_},
  };
}

// Trains the job once and prints the JSON object; 1 if training fails.
int Run(const BenchOptions& options) {
  const std::string output_dir = OutputDir(options);
  engine::RunOptions run;
  run.device = options.device;
  run.output_dir = output_dir;
  run.resume = engine::ResumeMode::kFresh;
  run.speed = options.speed;
  KinetoTrace trace(options.profile_trace, options.device.rfind("cuda", 0) == 0);
  BenchObserver observer(options.device, options.timing_warmup, &trace, options.profile_steps);
  const auto started = Clock::now();
  absl::StatusOr<engine::TrainResult> result = engine::RunTraining(options.spec, run, &observer);
  const double total_s = std::chrono::duration<double>(Clock::now() - started).count();
  // The checkpoint directory is left in place (the final adapter: a few MiB). Not removed with
  // std::filesystem::remove_all: on the GPU machine's toolchain that call jumped to a null
  // address (seen 2026-11-29, libstdc++ from another GCC than the compiler's).
  if (!result.ok()) {
    std::cerr << "attune-bench: " << result.status() << "\n";
    return 1;
  }
  std::cerr << "attune-bench: trained; reading memory statistics" << std::endl;
  // json objects keep their keys sorted, so the pieces merge into one object as before.
  json out = JobJson(options, output_dir);
  out.update(ThroughputJson(options, observer, *result));
  out["peak_device_gib"] = PeakDeviceGib(options.device);
  out["peak_rss_gib"] = PeakRssGib();
  out["setup_s"] = std::chrono::duration<double>(observer.started_ - started).count();
  out["total_s"] = total_s;
  out.update(StepsJson(observer, *result));
  if (!options.profile_trace.empty()) out["profiled_steps"] = observer.profiled_steps_;
  std::cout << out.dump() << std::endl;
  return 0;
}

// Flags that main() turns into BenchOptions fields: names to parse and switches that turn a speed
// measure off.
struct Flags {
  std::string task = "classification";
  std::string targets = "q,v";
  std::string schedule = "linear";
  std::string method = "lora";
  std::string packing = "on";
  std::vector<std::string> lr_ratios;  // "projection=multiplier"
  bool masked = false;
  bool plain_loss = false;
  bool no_graphs = false;
  bool unfused = false;
  bool pageable = false;
};

// The job's flags, into `spec` and `flags`.
void AddJobFlags(CLI::App* app, TrainSpec* spec, Flags* flags) {
  app->add_option("--model", spec->model_dir, "Hugging Face model directory")->required();
  app->add_option("--train", spec->train_path, "training data, JSONL")->required();
  app->add_option("--validation", spec->validation_path, "validation data (timed with the rest)");
  app->add_option("--task", flags->task, "classification | regression | causal-lm");
  app->add_option("--method", flags->method, "lora | full");
  app->add_option("--targets", flags->targets,
                  "comma-separated projections (q,k,v,o,gate,up,down)");
  app->add_option("--rank", spec->lora_rank, "LoRA rank r");
  app->add_option("--alpha", spec->lora_alpha, "LoRA alpha");
  app->add_option("--lr", spec->learning_rate, "base learning rate");
  app->add_option("--lr-ratio", flags->lr_ratios, "projection=multiplier, e.g. v=4 (repeatable)");
  app->add_option("--batch", spec->batch_size, "examples per step");
  app->add_option("--seq-len", spec->max_seq_len, "max sequence length (tokens)");
  app->add_option("--steps", spec->max_steps, "steps (0 = --epochs epochs)");
  app->add_option("--epochs", spec->epochs, "epochs when --steps is 0");
  app->add_option("--warmup", spec->warmup_steps, "learning-rate warmup steps");
  app->add_option("--schedule", flags->schedule, "linear | cosine | constant");
  app->add_option("--max-grad-norm", spec->max_grad_norm, "gradient clipping (0 = off)");
  app->add_option("--seed", spec->seed, "seed");
  app->add_option("--packing", flags->packing, "on | off (default on, as a job's default)")
      ->check(CLI::IsMember({"on", "off"}));
  app->add_option("--tokens-per-step", spec->tokens_per_step,
                  "packed tokens per step (default batch x seq-len)");
}

// Where and how the job runs, into `options` and `flags`.
void AddRunFlags(CLI::App* app, BenchOptions* options, Flags* flags) {
  app->add_option("--device", options->device, "cpu | cuda:N");
  app->add_option("--timing-warmup", options->timing_warmup, "steps left out of the timing");
  app->add_option("--output-dir", options->output_dir, "checkpoint directory (default: temporary)");
  app->add_option("--label", options->label, "free text copied into the JSON");
  app->add_flag("--masked-attention", flags->masked,
                "always pass an attention mask (no flash attention)");
  app->add_flag("--plain-lm-loss", flags->plain_loss,
                "causal LM: full [B,T,V] logits, not chunked");
  app->add_flag("--no-cuda-graphs", flags->no_graphs,
                "CUDA: every step eager (no CUDA graph replays)");
  app->add_flag(
      "--unfused", flags->unfused,
      "CUDA: decoders' RMSNorm, RoPE and SwiGLU as plain LibTorch ops, not fused kernels, "
      "and packed attention through the block mask, not the varlen flash kernel");
  app->add_option("--packed-attention", options->speed.packed_attention,
                  "CUDA: packed attention kernel: auto | flash | efficient | mask")
      ->transform(CLI::CheckedTransformer(PackedAttentionNames()));
  app->add_flag("--pageable-batches", flags->pageable,
                "CUDA: batches in ordinary (not pinned) memory");
  app->add_option("--profile-trace", options->profile_trace,
                  "write a Kineto (Chrome) trace of the steps after the warm-up to this file");
  app->add_option("--profile-steps", options->profile_steps, "steps the trace records");
  app->add_option("--metrics-every", options->speed.metrics_every,
                  "steps between reading metrics back (0 = engine default; 1 = sync every step)");
}

// --lr-ratio items into `lr_ratios`; INVALID_ARGUMENT for one that is not projection=number.
absl::Status ParseLrRatios(const std::vector<std::string>& items,
                           std::map<std::string, double>* lr_ratios) {
  for (const std::string& item : items) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    char* end = nullptr;
    const double ratio = std::strtod(kv.second.c_str(), &end);
    if (kv.second.empty() || *end != '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("--lr-ratio: '", item, "' is not projection=number"));
    }
    (*lr_ratios)[kv.first] = ratio;
  }
  return absl::OkStatus();
}

// Completes `options` from the parsed `flags` and checks the job as the server would.
absl::Status ApplyFlags(const Flags& flags, BenchOptions* options) {
  auto parsed_task = ParseTask(flags.task);
  auto parsed_schedule = ParseSchedule(flags.schedule);
  auto parsed_method = ParseMethod(flags.method);
  for (const absl::Status& s :
       {parsed_task.status(), parsed_schedule.status(), parsed_method.status()}) {
    RETURN_IF_ERROR(s);
  }
  options->speed.unmasked_attention = !flags.masked;
  options->speed.chunked_lm_loss = !flags.plain_loss;
  options->speed.pinned_batches = !flags.pageable;
  options->speed.cuda_graphs = !flags.no_graphs;
  options->speed.fused_kernels = !flags.unfused;
  TrainSpec& spec = options->spec;
  spec.task = *parsed_task;
  spec.schedule = *parsed_schedule;
  spec.method = *parsed_method;
  spec.packing = flags.packing == "on";
  for (absl::string_view t : absl::StrSplit(flags.targets, ',', absl::SkipEmpty())) {
    spec.targets.emplace_back(t);
  }
  std::sort(spec.targets.begin(), spec.targets.end());
  RETURN_IF_ERROR(ParseLrRatios(flags.lr_ratios, &spec.lr_ratios));
  JobSpec job;
  job.train = spec;
  return ValidateJobSpecFields(job);
}

}  // namespace
}  // namespace attune::bench

int main(int argc, char** argv) {
  attune::bench::BenchOptions options;
  options.spec.checkpoint_every = 0;
  options.spec.keep_checkpoints = 1;
  attune::bench::Flags flags;
  CLI::App app{"attune-bench: time the training engine on one job (no gRPC); prints JSON"};
  attune::bench::AddJobFlags(&app, &options.spec, &flags);
  attune::bench::AddRunFlags(&app, &options, &flags);
  CLI11_PARSE(app, argc, argv);
  if (absl::Status s = attune::bench::ApplyFlags(flags, &options); !s.ok()) {
    std::cerr << "attune-bench: " << s.message() << "\n";
    return 2;
  }
  return attune::bench::Run(options);
}
