// LoadModel / DescribeModel: pick the architecture from config.json and build it.
#include "server/engine/model.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/engine/hf_config.h"
#include "server/engine/llama.h"
#include "server/engine/roberta.h"
#include "server/engine/safetensors_torch.h"

namespace attune::engine {
namespace {

absl::Status UnsupportedModelType(const HfConfig& config) {
  return absl::InvalidArgumentError(
      absl::StrCat("model: model_type '", config.model_type,
                   "' is not supported; expected one of bert, roberta, llama, qwen2, mistral"));
}

}  // namespace

torch::Tensor Model::CausalLmLoss(const torch::Tensor& input_ids,
                                  const torch::Tensor& attention_mask, const torch::Tensor& labels,
                                  const PackedLayout& packing) {
  torch::Tensor logits = Forward(input_ids, attention_mask, packing);
  const int64_t vocab = logits.size(-1);
  return torch::nn::functional::cross_entropy(
      logits.slice(1, 0, logits.size(1) - 1).reshape({-1, vocab}).to(torch::kFloat32),
      labels.slice(1, 1).reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
}

absl::StatusOr<ModelDescription> DescribeModel(const std::string& model_dir,
                                               const std::vector<std::string>& data_roots) {
  ASSIGN_OR_RETURN(HfConfig config, LoadHfConfig(model_dir, data_roots));
  ModelDescription d;
  d.architecture = config.architecture;
  d.model_type = config.model_type;
  d.vocab_size = config.vocab_size;
  d.max_position_embeddings = config.max_position_embeddings;
  if (IsEncoderModelType(config.model_type)) {
    d.supported_targets = EncoderProjections();
  } else if (IsDecoderModelType(config.model_type)) {
    d.supported_targets = DecoderProjections();
  } else {
    return UnsupportedModelType(config);
  }
  return d;
}

absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& model_dir,
                                                 const ModelOptions& options) {
  ASSIGN_OR_RETURN(HfConfig config, LoadHfConfig(model_dir, options.data_roots));
  const bool encoder = IsEncoderModelType(config.model_type);
  if (!encoder && !IsDecoderModelType(config.model_type)) return UnsupportedModelType(config);
  if (options.method != Method::kFull && options.lora_rank < 1) {
    return absl::InvalidArgumentError("lora_rank: must be at least 1");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<WeightLoader> weights,
                   WeightLoader::Open(model_dir, options.data_roots));
  // A base model (RobertaModel, LlamaModel) saves its keys without the prefix.
  weights->set_base_prefix(encoder ? config.model_type + "." : "model.");
  weights->set_cache(options.frozen_cache);
  try {
    torch::NoGradGuard no_grad;
    return encoder ? LoadEncoder(config, *weights, options)
                   : LoadDecoder(config, *weights, options);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(
        "model '", model_dir, "': LibTorch failed while loading: ", e.what_without_backtrace()));
  }
}

}  // namespace attune::engine
