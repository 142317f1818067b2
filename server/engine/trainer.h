// The training engine's public interface: check a job before it is queued, then train it.
//
// This header is plain C++: no LibTorch type appears here, so the gRPC and scheduler layers can
// include it without seeing LibTorch's bundled protobuf headers (PyTorch's LibTorch ships older
// google/protobuf headers; a file that sees them and a generated .pb.h does not compile).
//
// A job runs as Setup (data, model, optimizer) -> Resume (from its newest checkpoint, if any) ->
// Train (steps, with evaluations and checkpoints when due) -> a last checkpoint when it completes
// or is stopped (training_run.h). Nothing is left to clean up: the model and data go with the
// call, and the checkpoints stay in the output directory. Progress is reported through a
// `TrainingObserver`, which is also asked, once per step, whether to stop.
#ifndef ATTUNE_SERVER_ENGINE_TRAINER_H_
#define ATTUNE_SERVER_ENGINE_TRAINER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "common/metrics.h"

namespace attune::engine {

// The step and evaluation metrics are the typed values every layer shares (common/metrics.h).
using ::attune::DeviceMemory;
using ::attune::EvalMetrics;
using ::attune::StepMetrics;

// A checkpoint that has been written completely (atomically) to disk.
struct CheckpointInfo {
  int64_t step = 0;
  std::string dir;                     // directory holding adapter_model.safetensors etc.
  int64_t adapter_bytes = 0;           // size of the adapter files a download would carry
  std::string sha256;                  // of adapter_model.safetensors
  std::optional<double> eval_metric;   // the validation metric at this step, when evaluated
  bool best = false;                   // the best checkpoint so far by that metric
  std::vector<int64_t> deleted_steps;  // older checkpoints removed when this one was kept
};

// Receives progress from a running job. Called on the training thread; implementations must be
// cheap (publish into a buffer) and thread-safe with respect to their other readers.
struct SpecCheck;

class TrainingObserver {
 public:
  virtual ~TrainingObserver() = default;
  // Called once the model and data are set up, before the first step, with the real parameter
  // counts and sizes. `resumed_from_step` is > 0 when training continues from a checkpoint.
  virtual void OnStart(const SpecCheck& setup, int64_t resumed_from_step) {}
  // metrics.device_memory is set on CUDA (the allocator's figures when the step was read back)
  // and unset on the CPU.
  virtual void OnStep(const StepMetrics& metrics) = 0;
  virtual void OnEval(const EvalMetrics& metrics) = 0;
  virtual void OnCheckpoint(const CheckpointInfo& checkpoint) = 0;
  virtual void OnWarning(const std::string& message) = 0;
  // Polled once per step; returning true ends the job after the current step.
  virtual bool StopRequested() = 0;
  // Shared-base groups: the ids of the jobs this one now trains beside. Called by the runner that
  // groups jobs (it knows their ids; the engine does not).
  virtual void OnSharedBase(const std::vector<std::string>& job_ids) {}
};

// What a job's spec describes, found by reading its files without training.
struct SpecCheck {
  std::string architecture;      // e.g. "RobertaForSequenceClassification"
  int64_t total_parameters = 0;  // of the base model (and head)
  int64_t trainable_parameters = 0;
  int64_t base_model_bytes = 0;  // size of the model's weight files on disk
  int num_labels = 0;            // classification: distinct labels in the training data
  int64_t train_examples = 0;
  int64_t validation_examples = 0;
  // CheckSpec only: an upper bound on the memory training takes on the device
  // (EstimateTrainingMemory, parameter_count.h); 0 = not estimated.
  int64_t estimated_memory_bytes = 0;
};

struct CheckOptions {
  // The directories the job's files must lie in when they are opened (attuned's --data-roots,
  // resolved); empty = no root restriction (the engine's tests and tools).
  std::vector<std::string> data_roots;
};

// Reads config.json, the safetensors headers, the tokenizer and the data files named by `spec`
// and checks that they exist, parse, and fit the spec (targets present in the architecture,
// every weight the model needs present with its shape, every tokenizer id below config.json's
// vocab_size, labels usable for the task). Fills every field; the parameter counts equal what
// RunTraining reports in OnStart (parameter_count.h). Returns INVALID_ARGUMENT naming the field
// ("train: data/x.jsonl:7: missing 'label'") for bad input, RESOURCE_EXHAUSTED when memory ran
// out, INTERNAL for anything else unexpected (exception_status.h). Thread-safe; loads no
// weights. Every file is opened inside options.data_roots (common/confined_file.h): one outside
// them is INVALID_ARGUMENT ("model: /d/m/model.safetensors is outside the data roots (/d)").
absl::StatusOr<SpecCheck> CheckSpec(const TrainSpec& spec, const CheckOptions& options = {});

enum class ResumeMode {
  kFresh,       // ignore anything in output_dir
  kFromLatest,  // continue from the newest complete checkpoint in output_dir, if any
};

// Which attention a packed batch runs on CUDA (packed_attention.h; the CPU always runs the block
// mask). kAuto is the engine's choice; the others are for benchmarks and tests.
enum class PackedAttentionKernel {
  kAuto,
  kFlashVarlen,      // LibTorch's flash attention over cumulative sequence lengths
  kEfficientVarlen,  // LibTorch's memory-efficient attention over cumulative sequence lengths
  kBlockMask,        // SDPA with a block-diagonal mask [rows, 1, length, length]
};

// Switches for the engine's speed measures, all on by default. They change how fast a step runs,
// not what it computes (the same numbers within rounding); attune-bench turns them off one at a
// time to measure what each is worth.
struct SpeedOptions {
  // A batch without padding goes to the model with no attention mask, so that SDPA can run
  // flash attention (causal for decoders).
  bool unmasked_attention = true;
  // Causal LM: the loss is computed a block of positions at a time, never holding
  // [batch, seq, vocab] logits; each block's gradient is formed in the forward pass while its
  // logits are held, so the backward pass recomputes nothing (lm_loss.h).
  bool chunked_lm_loss = true;
  // On CUDA, batches are built in pinned host memory and copied asynchronously.
  bool pinned_batches = true;
  // CUDA: steps of a recurring batch shape run as CUDA graph replays (forward, backward,
  // clipping and update captured once), when a timed eager step shows the host, not the device,
  // bounds the step (step_graphs.h). Ignored on the CPU.
  bool cuda_graphs = true;
  // CUDA: the decoders' RMSNorm, rotary embedding and SwiGLU as fused kernels (fused_ops.h).
  bool fused_kernels = true;
  // CUDA: the packed batches' attention kernel (kAuto unless a benchmark compares them).
  PackedAttentionKernel packed_attention = PackedAttentionKernel::kAuto;
  // Steps between reading losses and gradient norms back from the device. 0 = automatic: every
  // step on the CPU; on CUDA whenever 0.5 s has passed since the last read (and before each
  // evaluation, checkpoint and stop), so a step never waits for the device. OnStep is then
  // called for the steps in between together; each carries its own exact loss.
  int metrics_every = 0;
};

// Data-parallel training (data_parallel.h): this process is rank `rank` of `world_size`, each
// on its own device, and every rank is given the same spec. The spec's batch_size (and
// tokens_per_step) are per rank: a step takes world_size x batch_size examples in all. Only
// rank 0 writes checkpoints; every rank resumes from them (output_dir is shared).
struct ParallelOptions {
  int rank = 0;
  int world_size = 1;
  // "HOST:PORT" where rank 0 hosts the ranks' rendezvous (c10d TCPStore); empty = one process,
  // no collectives.
  std::string rendezvous;
  // The address this rank's Gloo transport listens on (CPU ranks); empty = rendezvous's host.
  std::string local_address;
  int timeout_seconds = 120;  // for the rendezvous and each collective
};

struct RunOptions {
  std::string device = "cpu";  // "cpu" or "cuda:N"
  ParallelOptions parallel;
  std::string output_dir;  // checkpoints are written under here; created if missing
  ResumeMode resume = ResumeMode::kFromLatest;
  SpeedOptions speed;
  // The directories the job's model and data files must lie in when they are opened
  // (common/confined_file.h): a file that became a link to the outside since CheckSpec fails the
  // job. Empty = no root restriction (the engine's tests and tools); attuned passes its roots.
  std::vector<std::string> data_roots;
};

enum class Outcome {
  kCompleted,  // every step taken, or early stopping ended the job (TrainResult::stopped_early)
  kStopped,    // StopRequested() returned true
};

struct TrainResult {
  Outcome outcome = Outcome::kCompleted;
  int64_t steps = 0;
  std::optional<EvalMetrics> final_eval;
  std::optional<CheckpointInfo> final_checkpoint;
  int64_t total_parameters = 0;
  int64_t trainable_parameters = 0;
  int64_t graph_replays = 0;  // steps run as CUDA graph replays (SpeedOptions::cuda_graphs)
  // Why a completed job took fewer than its steps (early stopping, early_stopping.h), e.g.
  // "stopped early at step 60: eval accuracy did not improve in 3 evaluations; the best is step
  // 30 (0.91)"; empty otherwise.
  std::string stopped_early;
};

// Trains `spec` on `options.device`. Blocks until the job completes, is stopped, or fails.
// Returns the result on completion or stop; on failure returns a status whose message says what
// went wrong: INVALID_ARGUMENT for bad data or a checkpoint that cannot be resumed,
// RESOURCE_EXHAUSTED when host or device memory ran out, INTERNAL for repeated non-finite losses,
// I/O errors (an unreadable checkpoints directory included) and other failures. Never throws.
// An old checkpoint that cannot be pruned is an OnWarning, not a failure.
// `observer` must outlive the call.
absl::StatusOr<TrainResult> RunTraining(const TrainSpec& spec, const RunOptions& options,
                                        TrainingObserver* observer);

// Devices LibTorch can run on here: "cuda:0".. for each visible GPU; empty when there is none.
std::vector<std::string> CudaDevices();

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_TRAINER_H_
