// The two JSON files of a checkpoint that describe its adapter: PEFT's adapter_config.json and
// attune's own attune.json. Internal to the engine; plain C++ (no LibTorch, no JSON types in
// the interface).
//
// The trainer fills the typed values below; only this file knows the JSON. adapter_config.json
// has exactly the fields (and value types) of the LoraConfig that PEFT writes, so that PEFT
// loads the adapter unchanged (checkpoint_format_test compares it with PEFT's own file).
// attune.json ("format": "attune.checkpoint.v1") records what PEFT has no field for: the
// learning-rate ratios, the label names, the data files' hashes, the metrics at the step and
// the whole job spec.
#ifndef ATTUNE_SERVER_ENGINE_ADAPTER_FILES_H_
#define ATTUNE_SERVER_ENGINE_ADAPTER_FILES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/job_spec.h"
#include "common/metrics.h"

namespace attune::engine {

// PEFT's LoraConfig for a LoRA or DoRA adapter (Method::kFull checkpoints have none).
struct PeftLoraConfig {
  std::string task_type;                // "SEQ_CLS" or "CAUSAL_LM"
  std::string base_model_name_or_path;  // the job's model directory
  int r = 8;                            // LoRA rank
  double lora_alpha = 16.0;
  double lora_dropout = 0.0;
  bool use_rslora = false;
  bool use_dora = false;                     // Method::kDora: the lora_magnitude_vector tensors
  std::vector<std::string> target_modules;   // the model's module names ("query", "q_proj")
  std::vector<std::string> modules_to_save;  // the head's ("classifier", "score"); may be empty
};

// What attune.json records at one step.
struct CheckpointRecord {
  TrainSpec spec;  // the job's spec
  int64_t step = 0;
  int num_labels = 0;                    // classification; 1 for regression; 0 for causal LM
  std::vector<std::string> label_names;  // index = class id
  std::string train_sha256;              // of the data files
  std::string validation_sha256;         // empty without validation data
  double train_loss = 0;                 // the last finite training loss
  std::optional<EvalMetrics> eval;       // the newest evaluation, when there was one
};

// The text of adapter_config.json (2-space indented JSON). Never fails.
std::string AdapterConfigJson(const PeftLoraConfig& config);

// The text of attune.json (2-space indented JSON). Never fails.
std::string CheckpointRecordJson(const CheckpointRecord& record);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_ADAPTER_FILES_H_
