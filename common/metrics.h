// What a training job measures, as typed values from the engine to the edges.
//
// The engine fills these, the scheduler keeps the newest of each per job, the store persists
// them (one JSON conversion, in store/), the gRPC layer converts them to proto (one conversion, in
// api/proto_convert) and the HTTP side to its JSON (one conversion, in http/json_views). Nothing
// in between flattens them into strings. No proto, SQLite or LibTorch types appear here.
#ifndef ATTUNE_COMMON_METRICS_H_
#define ATTUNE_COMMON_METRICS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace attune {

// The CUDA caching allocator's figures for a job's device, read after a step. Absent on the CPU.
struct DeviceMemory {
  int64_t allocated_bytes = 0;       // held by live tensors now
  int64_t reserved_bytes = 0;        // held by the allocator (allocated plus cached)
  int64_t peak_allocated_bytes = 0;  // the most allocated at once since the job started
};

// Reported for every optimizer step (or skipped step), in order. On CUDA the engine reads
// losses back from the device only now and then (SpeedOptions::metrics_every), so several steps
// may be reported together; every field still describes its own step, except the rates, which are
// averaged over the steps reported together.
struct StepMetrics {
  int64_t step = 0;         // 1-based count of steps taken so far
  int64_t total_steps = 0;  // steps the job will take in all
  double epoch = 0;         // fractional epoch, e.g. 1.5 = half way through the second epoch
  double train_loss = 0;    // mean loss of this step's batch (exactly this step's)
  // Parameter group name -> learning rate now. Names are "<projection>.<part>" with part
  // "lora_A", "lora_B" or "weight" (e.g. "v.lora_A"), and "head".
  std::map<std::string, double> learning_rates;
  double grad_norm = 0;          // global L2 norm before clipping; 0 when skipped
  double tokens_per_second = 0;  // non-padding tokens; averaged over steps reported together
  double samples_per_second = 0;
  int64_t tokens = 0;    // non-padding tokens in this step's batch
  int64_t samples = 0;   // examples in this step's batch
  bool skipped = false;  // true when the loss or gradient was not finite: no update was made
  std::optional<DeviceMemory> device_memory;  // CUDA only
};

// Reported after every evaluation on the validation set.
struct EvalMetrics {
  int64_t step = 0;
  double loss = 0;
  std::optional<double> accuracy;    // classification, in [0, 1]
  std::optional<double> f1;          // classification with two labels: F1 of label 1, in [0, 1]
  std::optional<double> mcc;         // classification: Matthews correlation, in [-1, 1]
  std::optional<double> pearson;     // regression
  std::optional<double> spearman;    // regression
  std::optional<double> perplexity;  // causal LM
  int64_t examples = 0;
};

// The evaluation metric that ranks checkpoints and decides early stopping (TrainSpec::eval_metric).
// kUnspecified = the task's default (common/job_spec.h DefaultEvalMetric).
enum class EvalMetric {
  kUnspecified = 0,
  kAccuracy,  // classification
  kF1,        // classification with two labels
  kMcc,       // classification (CoLA's metric)
  kPearson,   // regression
  kSpearman,  // regression
  kLoss,      // any task; lower is better
};

std::string EvalMetricName(EvalMetric metric);  // "accuracy", "f1", "mcc", ..., "" for unspecified
// INVALID_ARGUMENT "eval_metric: unknown 'x'; expected accuracy, f1, mcc, pearson, spearman or
// loss".
absl::StatusOr<EvalMetric> ParseEvalMetric(const std::string& name);

// The number that ranks checkpoints, higher is better: `by` where the evaluation has it (minus
// the loss for kLoss); otherwise, and for kUnspecified, the accuracy where there is one, minus
// the validation loss where not.
double RankingMetric(const EvalMetrics& eval, EvalMetric by = EvalMetric::kUnspecified);

// A checkpoint as the "best checkpoint" rule sees it.
struct RankedCheckpoint {
  int64_t step = 0;
  double metric = 0;  // RankingMetric of the evaluation at `step`
};

// The one rule for "best checkpoint", used by the engine (which one to keep when pruning) and
// by downloads ("best"): true when `a` is better than `b`: a higher metric, or the same metric at
// an earlier step (the first checkpoint to reach a score stays the best).
bool Outranks(const RankedCheckpoint& a, const RankedCheckpoint& b);

}  // namespace attune

#endif  // ATTUNE_COMMON_METRICS_H_
