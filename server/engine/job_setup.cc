#include "server/engine/job_setup.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/confined_file.h"
#include "common/status_macros.h"
#include "server/engine/chat/chat_template.h"
#include "server/engine/chat_examples.h"
#include "server/engine/checkpoint.h"
#include "server/engine/file_limits.h"
#include "server/engine/hf_config.h"
#include "server/engine/safetensors.h"

namespace attune::engine {

namespace fs = std::filesystem;

namespace {

// The tokenizer's messages quote what they reject (a type name, a token, a merge); at most this
// many characters of them reach the job's error, so a file's contents are never echoed at length.
constexpr size_t kMaxTokenizerReason = 200;

// The model's tokenizer.json, read inside `data_roots`.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(
    const std::string& model_dir, const std::vector<std::string>& data_roots) {
  const std::string path = (fs::path(model_dir) / "tokenizer.json").string();
  absl::StatusOr<std::string> text = ReadInsideRoots(data_roots, path, kMaxTokenizerJsonBytes);
  if (!text.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("model: ", text.status().message()));
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(*text);
  if (!tokenizer.ok()) {
    absl::string_view reason = tokenizer.status().message();
    const bool cut = reason.size() > kMaxTokenizerReason;
    return absl::InvalidArgumentError(absl::StrCat(
        "model: ", path, ": ", reason.substr(0, kMaxTokenizerReason), cut ? "..." : ""));
  }
  return tokenizer;
}

// The examples of one data file: conversations through the model's chat template (the helper
// started once per job, on the first file that needs it), other records as data.h says.
absl::StatusOr<std::vector<Example>> TokenizeFile(const TrainSpec& spec,
                                                  const std::vector<Record>& records,
                                                  const JobData& data, const std::string& field,
                                                  const std::string& path,
                                                  const std::vector<std::string>& data_roots,
                                                  std::unique_ptr<chat::ChatRenderer>& renderer) {
  if (spec.task != Task::kCausalLm || !HasConversations(records)) {
    return TokenizeRecords(records, *data.tokenizer, spec.task, data.labels, spec.max_seq_len,
                           data.eos_id, field, path);
  }
  if (renderer == nullptr) {
    ASSIGN_OR_RETURN(chat::ChatTemplate chat_template,
                     chat::LoadChatTemplate(spec.model_dir, data_roots));
    ASSIGN_OR_RETURN(renderer, chat::ChatRenderer::Create(chat_template, {}));
  }
  ChatExampleOptions options;
  options.max_seq_len = spec.max_seq_len;
  options.train_on_inputs = spec.train_on_inputs;
  return TokenizeConversations(records, *renderer, *data.tokenizer, options, field, path);
}

}  // namespace

absl::StatusOr<JobData> SetupData(const TrainSpec& spec,
                                  const std::vector<std::string>& data_roots) {
  JobData data;
  ASSIGN_OR_RETURN(HfConfig config, LoadHfConfig(spec.model_dir, data_roots));
  ASSIGN_OR_RETURN(data.tokenizer, LoadTokenizer(spec.model_dir, data_roots));
  data.eos_id = static_cast<int32_t>(config.eos_token_id.value_or(-1));
  // The tokenizer's padding token, else config.json's, else end-of-sequence, else 0.
  const std::optional<int32_t> pad = data.tokenizer->PadId();
  const int64_t config_pad = config.pad_token_id.value_or(-1);
  data.pad_id = pad.has_value()   ? *pad
                : config_pad >= 0 ? static_cast<int32_t>(config_pad)
                                  : std::max(0, data.eos_id);

  // Each data file is read once: the records and the hash come from the same bytes.
  ASSIGN_OR_RETURN(JsonlFile train_file,
                   ReadJsonlFile(spec.train_path, "train", spec.task, data_roots));
  const std::vector<Record>& train = train_file.records;
  data.train_sha256 = train_file.sha256;
  JsonlFile validation_file;
  if (!spec.validation_path.empty()) {
    ASSIGN_OR_RETURN(validation_file,
                     ReadJsonlFile(spec.validation_path, "validation", spec.task, data_roots));
    data.validation_sha256 = validation_file.sha256;
  }
  const std::vector<Record>& validation = validation_file.records;
  if (spec.task == Task::kSequenceClassification) {
    ASSIGN_OR_RETURN(data.labels, BuildLabelMap(train, "train"));
  } else if (spec.task == Task::kRegression) {
    data.labels.num_labels = 1;
  }
  std::unique_ptr<chat::ChatRenderer> renderer;  // started for the first conversation file
  ASSIGN_OR_RETURN(data.train,
                   TokenizeFile(spec, train, data, "train", spec.train_path, data_roots, renderer));
  ASSIGN_OR_RETURN(data.validation, TokenizeFile(spec, validation, data, "validation",
                                                 spec.validation_path, data_roots, renderer));
  return data;
}

torch::Device ParseDevice(const std::string& device) {
  if (device.empty() || device == "cpu") return torch::kCPU;
  return torch::Device(device);
}

absl::StatusOr<std::unique_ptr<Model>> SetupModel(const TrainSpec& spec, const JobData& data,
                                                  torch::Device device, Kernels kernels,
                                                  PackedAttentionKernel packed_attention,
                                                  const std::vector<std::string>& data_roots,
                                                  std::shared_ptr<FrozenTensorCache> frozen_cache) {
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
  options.packed_attention = packed_attention;
  options.data_roots = data_roots;
  options.frozen_cache = std::move(frozen_cache);
  return LoadModel(spec.model_dir, options);
}

int64_t WeightBytes(const std::string& model_dir, const std::vector<std::string>& data_roots) {
  absl::StatusOr<std::unique_ptr<SafetensorsModel>> weights =
      SafetensorsModel::Open(model_dir, data_roots);
  return weights.ok() ? (*weights)->total_bytes() : 0;
}

}  // namespace attune::engine
