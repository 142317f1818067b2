#include "server/engine/tensor_file.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/engine/safetensors.h"
#include "server/engine/safetensors_torch.h"

namespace attune::engine {
namespace {

absl::StatusOr<DType> FromTorch(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat64:
      return DType::kF64;
    case torch::kFloat32:
      return DType::kF32;
    case torch::kFloat16:
      return DType::kF16;
    case torch::kBFloat16:
      return DType::kBF16;
    case torch::kInt64:
      return DType::kI64;
    case torch::kInt32:
      return DType::kI32;
    case torch::kInt16:
      return DType::kI16;
    case torch::kInt8:
      return DType::kI8;
    case torch::kUInt8:
      return DType::kU8;
    case torch::kBool:
      return DType::kBool;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("no safetensors dtype for ", c10::toString(type)));
  }
}

}  // namespace

absl::Status WriteTensorsFile(const std::string& path,
                              const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> cpu;  // keeps the buffers alive until written
  std::vector<TensorEntry> entries;
  cpu.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    cpu.push_back(tensor.detach().to(torch::kCPU).contiguous());
    const torch::Tensor& t = cpu.back();
    TensorEntry entry;
    entry.name = name;
    ASSIGN_OR_RETURN(entry.dtype, FromTorch(t.scalar_type()));
    entry.shape.assign(t.sizes().begin(), t.sizes().end());
    entry.data = t.data_ptr();
    entry.byte_size = static_cast<size_t>(t.numel()) * t.element_size();
    entries.push_back(std::move(entry));
  }
  return WriteSafetensors(path, entries, metadata);
}

absl::StatusOr<std::map<std::string, torch::Tensor>> ReadTensorsFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(path));
  std::map<std::string, torch::Tensor> tensors;
  for (const std::string& name : file->Names()) {
    const TensorView* view = file->Find(name);
    tensors.emplace(name, TensorFromView(*view, TorchDtype(view->dtype), torch::kCPU));
  }
  return tensors;
}

}  // namespace attune::engine
