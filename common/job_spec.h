// What a fine-tuning job asks for, as plain C++ values shared by every layer.
//
// `TrainSpec` is the part the training engine reads; `JobSpec` adds what only the scheduler
// needs (devices, priority, name, labels). The gRPC layer converts the proto `JobSpec` into these
// structs, the store keeps them as JSON (`JobSpecToJson` / `JobSpecFromJson`), and the engine
// trains from a `TrainSpec`. No proto or LibTorch types appear here.
#ifndef ATTUNE_COMMON_JOB_SPEC_H_
#define ATTUNE_COMMON_JOB_SPEC_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/metrics.h"

namespace attune {

enum class Task {
  kUnspecified = 0,
  kSequenceClassification,  // one label per example, cross-entropy
  kRegression,              // one float per example, mean squared error
  kCausalLm,                // next-token prediction; loss only on completion tokens
};

enum class Method {
  kLora = 0,  // low-rank adapters on the target projections
  kFull,      // train the target projection matrices themselves ("Full FT QV")
  kDora,      // LoRA plus a trainable magnitude per output row (Liu et al. 2024; PEFT use_dora)
};

enum class Schedule {
  kLinear = 0,  // warmup, then linear decay to zero at the last step
  kCosine,      // warmup, then half-cosine decay to zero
  kConstant,    // warmup, then constant
};

// The projections a job may train. Every architecture maps these to its own module names.
inline const std::vector<std::string>& AllProjections() {
  static const auto* kAll = new std::vector<std::string>{"q", "k", "v", "o", "gate", "up", "down"};
  return *kAll;
}

struct TrainSpec {
  std::string model_dir;  // Hugging Face model directory (config.json, safetensors, tokenizer.json)
  Task task = Task::kUnspecified;
  std::string train_path;       // JSONL file
  std::string validation_path;  // JSONL file; empty = no evaluation

  std::vector<std::string> targets;  // subset of AllProjections(), sorted, no duplicates
  Method method = Method::kLora;
  int lora_rank = 8;          // r, >= 1
  double lora_alpha = 16.0;   // scale = alpha / r (alpha / sqrt(r) with rsLoRA); (0, 1e6]
  double lora_dropout = 0.0;  // on the adapter input, in [0, 1)
  bool use_rslora = false;

  double learning_rate = 1e-3;              // base learning rate, > 0 (README: "Defaults")
  std::map<std::string, double> lr_ratios;  // projection -> multiplier (> 0); missing = 1
  double loraplus_ratio = 1.0;              // lr(B) / lr(A), > 0

  int epochs = 1;         // >= 1; ignored when max_steps > 0
  int64_t max_steps = 0;  // 0 = run `epochs` epochs
  int batch_size = 16;    // examples per step, >= 1
  int max_seq_len = 128;  // tokens, truncation length, >= 8
  // Sample packing (server/engine/packing.h): examples laid end to end in rows of max_seq_len
  // tokens, with no attention across examples. A step is then the rows that hold batch_size
  // examples on average, or, given tokens_per_step, tokens_per_step / max_seq_len rows (as many
  // examples as fit). Off: a step is batch_size examples, each padded to the longest in it.
  bool packing = true;
  int64_t tokens_per_step = 0;  // packing's token budget per step; 0 = about batch_size examples
  int64_t warmup_steps = 0;     // linear warmup from 0, >= 0
  // Chat records (causal LM): false = loss on the assistant's turns only (their end-of-turn token
  // included); true = loss on every token of the conversation.
  bool train_on_inputs = false;
  Schedule schedule = Schedule::kLinear;
  double weight_decay = 0.0;   // AdamW decoupled decay, [0, 10]; not on biases and norms
  double max_grad_norm = 1.0;  // gradient-norm clipping, [0, 1e6]; 0 = off
  uint64_t seed = 42;
  int64_t eval_every = 0;        // steps between evaluations; 0 = at the end of each epoch
  int64_t checkpoint_every = 0;  // steps between checkpoints; 0 = only at the end
  int keep_checkpoints = 3;      // the last K checkpoints kept (plus the best one)
  // What ranks checkpoints ("best") and decides early stopping. Unspecified = the task's
  // default (DefaultEvalMetric), filled in by ApplyJobSpecDefaults.
  EvalMetric eval_metric = EvalMetric::kUnspecified;
  // Evaluations in a row without a better eval_metric (Outranks) before the job stops early,
  // keeping its best checkpoint; >= 0; 0 = off. With it on, every evaluation is checkpointed.
  int early_stopping_patience = 0;
};

struct JobSpec {
  TrainSpec train;
  std::string name;                           // free text for people
  std::map<std::string, std::string> labels;  // free key/value pairs
  // GPUs wanted: -1 = not said (one GPU when the server has any, else a CPU slot; the scheduler
  // resolves it at submission), 0 = CPU slots, N = N GPUs.
  int gpus = -1;
  // Processes of data-parallel training, one per device slot: 0 = not said (the scheduler
  // resolves it at submission to gpus, or 1 on the CPU), 1..64. With gpus > 0 it must equal
  // gpus; with gpus = 0 the job takes `ranks` CPU slots.
  int ranks = 0;
  int priority = 0;  // higher runs first
  // Restarts from the last checkpoint after a crashed attempt (not after an input error).
  int max_retries = 2;
};

// The learning-rate ratio the seed paper recommends (Yao et al. 2024, arXiv 2410.02247): W_v at
// lambda = 4 times W_q's rate when LoRA trains exactly W_q and W_v.
inline constexpr double kDefaultValueLrRatio = 4.0;

// The eval_metric of a job that names none: accuracy for classification, pearson for regression,
// loss for causal LM.
EvalMetric DefaultEvalMetric(Task task);

// Fills what a user left to the server: eval_metric by task (DefaultEvalMetric); for LoRA or DoRA
// on exactly {q, v} with no ratio given, lr_ratios = {v: kDefaultValueLrRatio}. A user who sets any
// ratio (v: 1 included) keeps theirs.
void ApplyJobSpecDefaults(JobSpec* spec);

// The most rows of max_seq_len tokens a packed step can have: tokens_per_step / max_seq_len (at
// least 1), or batch_size without a budget (a training step then has the rows that hold
// batch_size examples on average, never more than batch_size: engine/packing.h). Memory
// estimates use it, and evaluation packs its steps to it.
int64_t PackedRowsPerStep(const TrainSpec& spec);

// Checks the values that need no file system: ranges, known targets and ratios. Messages name the
// field and what is allowed, e.g. "targets: unknown projection 'x'; expected any of
// q,k,v,o,gate,up,down". Every floating field must be finite and in its range (NaN and +-Inf are
// refused like any other out-of-range value), so that the stored JSON always reads back.
// Returns INVALID_ARGUMENT on the first problem found.
absl::Status ValidateJobSpecFields(const JobSpec& spec);

std::string TaskName(Task task);  // "classification", "regression", "causal-lm"
absl::StatusOr<Task> ParseTask(const std::string& name);
std::string MethodName(Method method);  // "lora", "full", "dora"
absl::StatusOr<Method> ParseMethod(const std::string& name);
std::string ScheduleName(Schedule schedule);  // "linear", "cosine", "constant"
absl::StatusOr<Schedule> ParseSchedule(const std::string& name);

// JSON round trip, used by the store. `JobSpecFromJson` fills missing fields with defaults and
// returns INVALID_ARGUMENT on malformed JSON or wrong types.
std::string JobSpecToJson(const JobSpec& spec);
absl::StatusOr<JobSpec> JobSpecFromJson(const std::string& json);

}  // namespace attune

#endif  // ATTUNE_COMMON_JOB_SPEC_H_
