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
// ".tmp" is debris from a crash and is removed by the next write.
#ifndef ATTUNE_SERVER_ENGINE_CHECKPOINT_H_
#define ATTUNE_SERVER_ENGINE_CHECKPOINT_H_

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/engine/trainer.h"

namespace attune::engine {

struct CheckpointContent {
  int64_t step = 0;
  std::vector<std::pair<std::string, torch::Tensor>> adapter;  // saved key -> tensor
  nlohmann::json adapter_config;  // adapter_config.json (empty for Method::kFull)
  nlohmann::json record;          // attune.json
  // Resume state.
  std::map<std::string, torch::Tensor> optimizer_state;
  int64_t optimizer_steps = 0;
  torch::Tensor rng_state;        // the CPU generator's state (uint8)
  nlohmann::json progress;        // best metric so far and anything else the trainer needs
};

// Writes a checkpoint atomically under `output_dir`/checkpoints. Returns what was written.
// INTERNAL on an I/O error; a failed write leaves earlier checkpoints untouched.
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
  nlohmann::json progress;
};

// The newest complete checkpoint under `output_dir`, or nullopt when there is none.
// INVALID_ARGUMENT when the newest one cannot be read.
absl::StatusOr<std::optional<LoadedCheckpoint>> LoadLatestCheckpoint(const std::string& output_dir);

// Steps of the complete checkpoints under `output_dir`, ascending.
std::vector<int64_t> ListCheckpointSteps(const std::string& output_dir);

// Deletes every complete checkpoint except the newest `keep_last` and `keep_step` (the best;
// -1 = none). Returns the steps deleted.
std::vector<int64_t> PruneCheckpoints(const std::string& output_dir, int keep_last,
                                      int64_t keep_step);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_CHECKPOINT_H_
