#include "server/engine/job_setup.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "server/engine/checkpoint.h"
#include "server/engine/hf_config.h"

namespace attune::engine {

namespace fs = std::filesystem;

namespace {

// The data file's sha256 for the checkpoint record; Sha256File's error (NOT_FOUND, INTERNAL)
// with the spec field in front.
absl::StatusOr<std::string> DataFileHash(const std::string& field, const std::string& path) {
  absl::StatusOr<std::string> hash = Sha256File(path);
  if (!hash.ok()) {
    return absl::Status(hash.status().code(), absl::StrCat(field, ": ", hash.status().message()));
  }
  return hash;
}

}  // namespace

absl::StatusOr<JobData> SetupData(const TrainSpec& spec) {
  JobData data;
  ASSIGN_OR_RETURN(HfConfig config, LoadHfConfig(spec.model_dir));
  const std::string tokenizer_path = (fs::path(spec.model_dir) / "tokenizer.json").string();
  auto tokenizer = Tokenizer::FromFile(tokenizer_path);
  if (!tokenizer.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model: ", tokenizer_path, ": ", tokenizer.status().message()));
  }
  data.tokenizer = std::move(*tokenizer);
  data.eos_id = static_cast<int32_t>(config.eos_token_id.value_or(-1));
  // The tokenizer's padding token, else config.json's, else end-of-sequence, else 0.
  const std::optional<int32_t> pad = data.tokenizer->PadId();
  const int64_t config_pad = config.pad_token_id.value_or(-1);
  data.pad_id = pad.has_value()   ? *pad
                : config_pad >= 0 ? static_cast<int32_t>(config_pad)
                                  : std::max(0, data.eos_id);

  ASSIGN_OR_RETURN(std::vector<Record> train, ReadJsonl(spec.train_path, "train", spec.task));
  std::vector<Record> validation;
  if (!spec.validation_path.empty()) {
    ASSIGN_OR_RETURN(validation, ReadJsonl(spec.validation_path, "validation", spec.task));
  }
  if (spec.task == Task::kSequenceClassification) {
    ASSIGN_OR_RETURN(data.labels, BuildLabelMap(train, "train"));
  } else if (spec.task == Task::kRegression) {
    data.labels.num_labels = 1;
  }
  ASSIGN_OR_RETURN(data.train,
                   TokenizeRecords(train, *data.tokenizer, spec.task, data.labels, spec.max_seq_len,
                                   data.eos_id, "train", spec.train_path));
  ASSIGN_OR_RETURN(data.validation, TokenizeRecords(validation, *data.tokenizer, spec.task,
                                                    data.labels, spec.max_seq_len, data.eos_id,
                                                    "validation", spec.validation_path));
  ASSIGN_OR_RETURN(data.train_sha256, DataFileHash("train", spec.train_path));
  if (!spec.validation_path.empty()) {
    ASSIGN_OR_RETURN(data.validation_sha256, DataFileHash("validation", spec.validation_path));
  }
  return data;
}

torch::Device ParseDevice(const std::string& device) {
  if (device.empty() || device == "cpu") return torch::kCPU;
  return torch::Device(device);
}

absl::StatusOr<std::unique_ptr<Model>> SetupModel(const TrainSpec& spec, const JobData& data,
                                                  torch::Device device, Kernels kernels) {
  ModelOptions options;
  options.task = spec.task;
  options.num_labels = spec.task == Task::kCausalLm ? 0 : data.labels.num_labels;
  options.targets = spec.targets;
  options.method = spec.method;
  options.lora_rank = spec.lora_rank;
  options.lora_alpha = spec.lora_alpha;
  options.lora_dropout = spec.lora_dropout;
  options.use_rslora = spec.use_rslora;
  options.device = device;
  options.frozen_dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  options.seed = spec.seed;
  options.kernels = kernels;
  return LoadModel(spec.model_dir, options);
}

int64_t WeightBytes(const std::string& model_dir) {
  int64_t bytes = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(model_dir, ec)) {
    if (entry.path().extension() == ".safetensors")
      bytes += static_cast<int64_t>(entry.file_size(ec));
  }
  return bytes;
}

}  // namespace attune::engine
