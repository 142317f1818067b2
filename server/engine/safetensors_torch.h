// LibTorch views of safetensors weights, for loading Hugging Face models. Internal to the engine.
//
// `WeightLoader` opens a model directory's weights (single file or shards, see safetensors.h) and
// copies named tensors out of the mapping into LibTorch tensors of the dtype and device asked for
// (fp16/bf16/fp32 weights convert to the frozen dtype), checking each shape against what
// config.json implies. Key lookups accept the spellings Hugging Face itself accepts: a base model
// saved without its prefix ("embeddings.word_embeddings.weight" for
// "roberta.embeddings.word_embeddings.weight") and the old LayerNorm "gamma"/"beta" names.
#ifndef ATTUNE_SERVER_ENGINE_SAFETENSORS_TORCH_H_
#define ATTUNE_SERVER_ENGINE_SAFETENSORS_TORCH_H_

#include <torch/torch.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "server/engine/frozen_cache.h"
#include "server/engine/safetensors.h"

namespace attune::engine {

inline torch::Dtype TorchDtype(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return torch::kFloat64;
    case DType::kF32:
      return torch::kFloat32;
    case DType::kF16:
      return torch::kFloat16;
    case DType::kBF16:
      return torch::kBFloat16;
    case DType::kI64:
      return torch::kInt64;
    case DType::kI32:
      return torch::kInt32;
    case DType::kI16:
      return torch::kInt16;
    case DType::kI8:
      return torch::kInt8;
    case DType::kU8:
      return torch::kUInt8;
    case DType::kBool:
      return torch::kBool;
  }
  return torch::kFloat32;
}

// Copies `view` into a new tensor (the mapping may be unaligned), then converts it to `dtype` on
// `device`. The result owns its memory and does not require grad.
inline torch::Tensor TensorFromView(const TensorView& view, torch::Dtype dtype,
                                    torch::Device device) {
  torch::Tensor t = torch::empty(view.shape, torch::TensorOptions().dtype(TorchDtype(view.dtype)));
  if (view.byte_size > 0) std::memcpy(t.data_ptr(), view.data, view.byte_size);
  return t.to(device, dtype);
}

class WeightLoader {
 public:
  // INVALID_ARGUMENT as SafetensorsModel::Open (the files opened inside `data_roots`).
  static absl::StatusOr<std::unique_ptr<WeightLoader>> Open(
      const std::string& model_dir, const std::vector<std::string>& data_roots) {
    ASSIGN_OR_RETURN(auto model, SafetensorsModel::Open(model_dir, data_roots));
    auto loader = std::unique_ptr<WeightLoader>(new WeightLoader());
    loader->dir_ = model_dir;
    loader->model_ = std::move(model);
    return loader;
  }

  // Keys starting with `prefix` ("roberta.", "model.") are also looked up without it, as
  // transformers does for a base model loaded into a model with a head.
  void set_base_prefix(const std::string& prefix) { base_prefix_ = prefix; }

  // The stored tensor for `key` under any accepted spelling, or nullptr.
  const TensorView* Find(const std::string& key) const {
    for (const std::string& k : Spellings(key)) {
      if (const TensorView* v = model_->Find(k)) return v;
    }
    return nullptr;
  }
  bool Has(const std::string& key) const { return Find(key) != nullptr; }

  // The tensor `key` with `shape`, as `dtype` on `device`. INVALID_ARGUMENT naming the key when it
  // is missing or has another shape.
  // With a cache set, a tensor already in it is returned without reading, and one read is put
  // in it.
  absl::StatusOr<torch::Tensor> Load(const std::string& key, const std::vector<int64_t>& shape,
                                     torch::Dtype dtype, torch::Device device) const {
    if (cache_ != nullptr) {
      std::optional<torch::Tensor> cached = cache_->Find(key, dtype, device);
      if (cached.has_value() && cached->sizes() == c10::IntArrayRef(shape)) return *cached;
    }
    ASSIGN_OR_RETURN(torch::Tensor t, Read(key, shape, dtype, device));
    if (cache_ != nullptr) cache_->Put(key, dtype, device, t);
    return t;
  }

  // Shared-base groups: the frozen tensors of the models this loader builds (frozen_cache.h).
  void set_cache(std::shared_ptr<FrozenTensorCache> cache) { cache_ = std::move(cache); }

  int64_t total_bytes() const { return model_->total_bytes(); }

 private:
  WeightLoader() = default;

  absl::StatusOr<torch::Tensor> Read(const std::string& key, const std::vector<int64_t>& shape,
                                     torch::Dtype dtype, torch::Device device) const {
    const TensorView* v = Find(key);
    if (v == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", dir_, "': weights lack tensor '", key, "'"));
    }
    if (v->shape != shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", dir_, "': tensor '", key, "' has shape [", absl::StrJoin(v->shape, ", "),
          "] but config.json implies [", absl::StrJoin(shape, ", "), "]"));
    }
    if (v->dtype != DType::kF32 && v->dtype != DType::kF16 && v->dtype != DType::kBF16 &&
        v->dtype != DType::kF64) {
      return absl::InvalidArgumentError(absl::StrCat("model '", dir_, "': tensor '", key, "' is ",
                                                     DTypeName(v->dtype),
                                                     "; expected F32, F16, BF16 or F64"));
    }
    return TensorFromView(*v, dtype, device);
  }

  std::vector<std::string> Spellings(const std::string& key) const {
    return HfKeySpellings(key, base_prefix_);
  }

  // Constant after Open.
  std::string dir_;
  std::unique_ptr<SafetensorsModel> model_;
  std::string base_prefix_;
  std::shared_ptr<FrozenTensorCache> cache_;
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_SAFETENSORS_TORCH_H_
