// Setting up a training job: its data (read, tokenized, hashed) and its model (loaded with the
// job's adapter settings). Internal to the engine; the trainer (trainer.cc) and CheckSpec use it.
#ifndef ATTUNE_SERVER_ENGINE_JOB_SETUP_H_
#define ATTUNE_SERVER_ENGINE_JOB_SETUP_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "server/engine/data.h"
#include "server/engine/fused_ops.h"
#include "server/engine/model.h"
#include "server/engine/tokenizer/tokenizer.h"

namespace attune::engine {

// A job's data, ready for batching.
struct JobData {
  std::unique_ptr<Tokenizer> tokenizer;
  LabelMap labels;
  std::vector<Example> train;
  std::vector<Example> validation;
  int32_t pad_id = 0;
  int32_t eos_id = -1;
  std::string train_sha256;  // of the files, for the checkpoint record
  std::string validation_sha256;
};

// Reads the model's config.json and tokenizer.json, then the job's JSONL files: tokenized and
// truncated to spec.max_seq_len, with labels mapped, and each file's sha256 (of the bytes read).
// Every file is opened inside `data_roots` (common/confined_file.h; empty = no restriction).
// INVALID_ARGUMENT naming the file (and line) on bad input or a file outside the roots.
absl::StatusOr<JobData> SetupData(const TrainSpec& spec,
                                  const std::vector<std::string>& data_roots);

// "cpu" (or empty) or "cuda:N".
torch::Device ParseDevice(const std::string& device);

// The job's model on `device`: frozen weights in bf16 on CUDA and fp32 on the CPU, adapters as
// the spec says, decoders' elementwise ops as `kernels` says; its files opened inside
// `data_roots`; its frozen tensors shared through `frozen_cache` when set (frozen_cache.h).
absl::StatusOr<std::unique_ptr<Model>> SetupModel(
    const TrainSpec& spec, const JobData& data, torch::Device device, Kernels kernels,
    PackedAttentionKernel packed_attention, const std::vector<std::string>& data_roots,
    std::shared_ptr<FrozenTensorCache> frozen_cache = nullptr);

// Bytes of the model's weight files (model.safetensors, or the shards its index lists), opened
// inside `data_roots`; 0 when they cannot be opened.
int64_t WeightBytes(const std::string& model_dir, const std::vector<std::string>& data_roots);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_JOB_SETUP_H_
