// The frozen tensors of one base model, shared by the models of a shared-base group
// (group_run.h). Internal to the engine.
//
// WeightLoader::Load (safetensors_torch.h) looks a tensor up here before reading it, and stores
// what it reads, so a second model loaded with the same cache holds the first one's tensors.
// Only frozen tensors go through Load: heads are read with TensorFromView, and LoRA's A and B
// are drawn, so every member keeps its own trainable tensors. (Method::kFull would train the
// shared weights; groups refuse it, group_run.cc.)
//
// Thread-safe.
#ifndef ATTUNE_SERVER_ENGINE_FROZEN_CACHE_H_
#define ATTUNE_SERVER_ENGINE_FROZEN_CACHE_H_

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "absl/synchronization/mutex.h"

namespace attune::engine {

class FrozenTensorCache {
 public:
  // The tensor stored under (key, dtype, device), if any.
  std::optional<torch::Tensor> Find(const std::string& key, torch::Dtype dtype,
                                    torch::Device device) const {
    absl::MutexLock lock(&mu_);
    auto it = tensors_.find(Key{key, dtype, device.str()});
    if (it == tensors_.end()) return std::nullopt;
    return it->second;
  }

  void Put(const std::string& key, torch::Dtype dtype, torch::Device device,
           const torch::Tensor& tensor) {
    absl::MutexLock lock(&mu_);
    tensors_.emplace(Key{key, dtype, device.str()}, tensor);
  }

  // Elements of every tensor held.
  int64_t elements() const {
    absl::MutexLock lock(&mu_);
    int64_t n = 0;
    for (const auto& [key, tensor] : tensors_) n += tensor.numel();
    return n;
  }

 private:
  using Key = std::tuple<std::string, torch::Dtype, std::string>;
  mutable absl::Mutex mu_;
  std::map<Key, torch::Tensor> tensors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_FROZEN_CACHE_H_
