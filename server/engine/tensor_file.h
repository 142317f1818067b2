// LibTorch tensors to and from safetensors files, on top of the plain reader and writer in
// safetensors.h. Internal to the engine.
#ifndef ATTUNE_SERVER_ENGINE_TENSOR_FILE_H_
#define ATTUNE_SERVER_ENGINE_TENSOR_FILE_H_

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace attune::engine {

// Writes `tensors` (any device; copied to the CPU, contiguous) in the given order with their
// own dtypes. INTERNAL on an I/O error.
absl::Status WriteTensorsFile(const std::string& path,
                              const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata);

// Reads every tensor of a safetensors file into CPU tensors that own their memory.
// INVALID_ARGUMENT for a missing or malformed file.
absl::StatusOr<std::map<std::string, torch::Tensor>> ReadTensorsFile(const std::string& path);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_TENSOR_FILE_H_
