#include "server/engine/tensor_file.h"

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/engine/safetensors.h"

namespace attune::engine {
namespace {

absl::StatusOr<DType> FromTorch(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat64: return DType::kF64;
    case torch::kFloat32: return DType::kF32;
    case torch::kFloat16: return DType::kF16;
    case torch::kBFloat16: return DType::kBF16;
    case torch::kInt64: return DType::kI64;
    case torch::kInt32: return DType::kI32;
    case torch::kInt16: return DType::kI16;
    case torch::kInt8: return DType::kI8;
    case torch::kUInt8: return DType::kU8;
    case torch::kBool: return DType::kBool;
    default: return absl::InvalidArgumentError(absl::StrCat("no safetensors dtype for ", c10::toString(type)));
  }
}

torch::ScalarType ToTorch(DType dtype) {
  switch (dtype) {
    case DType::kF64: return torch::kFloat64;
    case DType::kF32: return torch::kFloat32;
    case DType::kF16: return torch::kFloat16;
    case DType::kBF16: return torch::kBFloat16;
    case DType::kI64: return torch::kInt64;
    case DType::kI32: return torch::kInt32;
    case DType::kI16: return torch::kInt16;
    case DType::kI8: return torch::kInt8;
    case DType::kU8: return torch::kUInt8;
    case DType::kBool: return torch::kBool;
  }
  return torch::kFloat32;
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
    torch::Tensor t = torch::empty(view->shape, torch::TensorOptions().dtype(ToTorch(view->dtype)));
    if (view->byte_size > 0) std::memcpy(t.data_ptr(), view->data, view->byte_size);
    tensors.emplace(name, std::move(t));
  }
  return tensors;
}

}  // namespace attune::engine
