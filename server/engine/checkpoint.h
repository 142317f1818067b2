// Adapter-only checkpoints in Hugging Face PEFT's format, written atomically, plus resume state.
//
// Internal to the engine (LibTorch). A checkpoint is one directory:
//
//   <output_dir>/checkpoints/step-00000120/
//     adapter_model.safetensors   PEFT's tensor keys (base_model.model.<module>.lora_A.weight ...)
//     adapter_config.json         PEFT's LoraConfig fields
//     attune.json                 attune's own record: lr_ratios, loraplus_ratio, label names,
//                                 data hashes, metrics at this step
//     resume/optimizer.safetensors, resume/state.json   what a resume needs (not downloaded)
//
// It is first written as "step-00000120.tmp", every file fsynced, then renamed into place and
// the parent directory fsynced: a directory named "step-N" is always complete. Anything ending in
// ".tmp" is debris from a crash: the next write of that step replaces it, and PruneCheckpoints
// removes the rest. The JSON files' contents are adapter_files.h's.
//
// Functions here are thread-compatible: one job's trainer writes its own output_dir.
#ifndef ATTUNE_SERVER_ENGINE_CHECKPOINT_H_
#define ATTUNE_SERVER_ENGINE_CHECKPOINT_H_

#include <torch/torch.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/remove_tree.h"
#include "server/engine/adapter_files.h"
#include "server/engine/trainer.h"

namespace attune::engine {

// What a resume needs besides the tensors: the best checkpoint so far and the last loss
// (resume/state.json's "progress").
struct ResumeProgress {
  std::optional<double> best_score;  // RankingMetric of the best checkpoint; none before one
  int64_t best_step = -1;            // its step; -1 = none
  double train_loss = 0;             // the last finite training loss
};

struct CheckpointContent {
  int64_t step = 0;
  std::vector<std::pair<std::string, torch::Tensor>> adapter;  // saved key -> tensor
  std::optional<PeftLoraConfig> adapter_config;  // adapter_config.json; none for Method::kFull
  CheckpointRecord record;                       // attune.json
  // Resume state.
  std::map<std::string, torch::Tensor> optimizer_state;
  int64_t optimizer_steps = 0;
  torch::Tensor rng_state;  // the CPU generator's state (uint8)
  ResumeProgress progress;
};

// Writes a checkpoint atomically under `output_dir`/checkpoints. Returns what was written
// (deleted_steps, eval_metric and best are left for the caller). INTERNAL, naming the path and
// the OS error, on an I/O error, including debris of the same step that cannot be removed; a
// failed write leaves earlier checkpoints untouched.
// `fault_after_files` (tests only) fails the write after that many files, before the rename.
absl::StatusOr<CheckpointInfo> WriteCheckpoint(const std::string& output_dir,
                                               const CheckpointContent& content,
                                               int fault_after_files = -1);

struct LoadedCheckpoint {
  int64_t step = 0;
  std::string dir;
  std::map<std::string, torch::Tensor> adapter;
  std::map<std::string, torch::Tensor> optimizer_state;
  int64_t optimizer_steps = 0;
  torch::Tensor rng_state;
  ResumeProgress progress;
};

// What a complete checkpoint directory holds, as WriteCheckpoint reports it: `step`, `dir`,
// the adapter's SHA-256 and its download size (eval_metric, best and deleted_steps unset).
// INTERNAL naming the file when it cannot be read.
absl::StatusOr<CheckpointInfo> DescribeCheckpoint(const std::string& dir, int64_t step);

// The newest complete checkpoint under `output_dir`, or nullopt when there is none (no
// checkpoints directory, or nothing complete in it). INTERNAL when the directory cannot be
// listed (see ListCheckpointSteps); INVALID_ARGUMENT when the newest one cannot be read.
absl::StatusOr<std::optional<LoadedCheckpoint>> LoadLatestCheckpoint(const std::string& output_dir);

// Steps of the complete checkpoints under `output_dir`, ascending; empty when there is no
// checkpoints directory. INTERNAL naming the directory and the OS error when it exists but
// cannot be listed (e.g. "checkpoints: cannot list /x/checkpoints: Not a directory").
absl::StatusOr<std::vector<int64_t>> ListCheckpointSteps(const std::string& output_dir);

// Removes a file or directory tree; false with `*error` set ("PATH: OS error") when it cannot.
// RemoveTree (common/remove_tree.h) unless a test injects a failure.
using TreeRemover = std::function<bool(const std::string& path, std::string* error)>;

struct PruneResult {
  std::vector<int64_t> deleted;       // steps whose checkpoints are gone
  std::vector<std::string> warnings;  // what could not be listed or removed, with the OS error
};

// Deletes every complete checkpoint except the newest `keep_last` and `keep_step` (the best;
// -1 = none), and any ".tmp" debris. A checkpoint that cannot be removed stays out of `deleted`
// and gets a warning naming its path and the OS error
// ("checkpoints: cannot remove step 10: /x/checkpoints/step-00000010: Permission denied").
// Never fails: pruning is housekeeping, and what it could not do is in the warnings.
PruneResult PruneCheckpoints(const std::string& output_dir, int keep_last, int64_t keep_step,
                             const TreeRemover& remove = &RemoveTree);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_CHECKPOINT_H_
