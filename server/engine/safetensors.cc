#include "server/engine/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/confined_file.h"
#include "common/os_error.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "server/engine/file_limits.h"

namespace attune::engine {
namespace {

using nlohmann::json;

// Headers of real models are a few MB at most; refuse anything absurd before parsing.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kF64, "F64", 8},   {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2}, {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},   {DType::kI8, "I8", 1},   {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
};

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("safetensors '", path, "': ", what));
}

// A model file that could not be opened inside the data roots (confined_file.h's message, which
// names the file): INVALID_ARGUMENT for the job's "model" field.
absl::Status ModelFileError(const absl::Status& status) {
  return absl::InvalidArgumentError(absl::StrCat("model: ", status.message()));
}

// Opens the weights file `path` inside `data_roots` and maps it.
absl::StatusOr<std::unique_ptr<SafetensorsFile>> OpenModelFile(
    const std::string& path, const std::vector<std::string>& data_roots) {
  absl::StatusOr<ScopedFd> fd = OpenInsideRoots(data_roots, path);
  if (!fd.ok()) return ModelFileError(fd.status());
  return SafetensorsFile::Map(path, *std::move(fd));
}

// Parses and checks one header entry against a data section of `data_size` bytes.
absl::StatusOr<std::pair<TensorView, std::pair<uint64_t, uint64_t>>> ParseEntry(
    const std::string& name, const json& entry, uint64_t data_size) {
  if (!entry.is_object()) return absl::InvalidArgumentError("entry is not an object");
  auto dtype_it = entry.find("dtype");
  auto shape_it = entry.find("shape");
  auto offsets_it = entry.find("data_offsets");
  if (dtype_it == entry.end() || !dtype_it->is_string()) {
    return absl::InvalidArgumentError("missing string 'dtype'");
  }
  if (shape_it == entry.end() || !shape_it->is_array()) {
    return absl::InvalidArgumentError("missing array 'shape'");
  }
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
    return absl::InvalidArgumentError("'data_offsets' must be two non-negative integers");
  }
  TensorView view;
  ASSIGN_OR_RETURN(view.dtype, ParseDType(dtype_it->get<std::string>()));
  for (const json& d : *shape_it) {
    if (!d.is_number_unsigned()) {
      return absl::InvalidArgumentError("'shape' must hold non-negative integers");
    }
    view.shape.push_back(d.get<int64_t>());
  }
  uint64_t begin = (*offsets_it)[0].get<uint64_t>();
  uint64_t end = (*offsets_it)[1].get<uint64_t>();
  if (begin > end || end > data_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data_offsets [", begin, ", ", end, "] outside the data section of ", data_size, " bytes"));
  }
  ASSIGN_OR_RETURN(uint64_t expected, TensorByteSize(view.shape, view.dtype));
  if (expected != end - begin) {
    return absl::InvalidArgumentError(absl::StrCat(
        "size mismatch: shape ", ShapeString(view.shape), " of ", DTypeName(view.dtype), " needs ",
        expected, " bytes but data_offsets span ", end - begin));
  }
  view.byte_size = end - begin;
  return std::make_pair(std::move(view), std::make_pair(begin, end));
}

// A whole file mapped read-only; the caller unmaps it.
struct Mapping {
  void* addr;
  size_t size;
};

// Maps the file open as `fd` (named `path` in messages), which must hold at least the 8-byte
// header length.
absl::StatusOr<Mapping> MapFile(const std::string& path, const ScopedFd& fd) {
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    return Invalid(path, absl::StrCat("cannot stat: ", std::strerror(errno)));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    return Invalid(
        path, absl::StrCat("truncated: ", size, " bytes, shorter than the 8-byte header length"));
  }
  void* addr = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (addr == MAP_FAILED) {
    return Invalid(path, absl::StrCat("cannot map: ", std::strerror(errno)));
  }
  return Mapping{addr, size};
}

// The header length that the first 8 bytes of the `size`-byte file at `bytes` give, checked
// against the limit and the bytes that follow. The messages do not say the length: those 8
// bytes are the file's contents, and the file may be anything (its first 8 bytes of text).
absl::StatusOr<uint64_t> HeaderLength(const std::string& path, const uint8_t* bytes, size_t size) {
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > kMaxHeaderBytes) {
    return Invalid(path, "header length is larger than the limit of 100 MiB");
  }
  if (header_len > size - 8) {
    return Invalid(path, "truncated: the header length is larger than the file");
  }
  return header_len;
}

// Copies the "__metadata__" object, which must hold only strings, into `metadata`.
absl::Status ReadMetadata(const std::string& path, const json& value,
                          std::map<std::string, std::string>* metadata) {
  if (!value.is_object()) return Invalid(path, "'__metadata__' must be an object of strings");
  for (auto m = value.begin(); m != value.end(); ++m) {
    if (!m->is_string()) {
      return Invalid(path, absl::StrCat("'__metadata__' value '", m.key(), "' is not a string"));
    }
    (*metadata)[m.key()] = m->get<std::string>();
  }
  return absl::OkStatus();
}

// A tensor's [begin, end) byte range in the data section, and its name.
using NamedRange = std::pair<std::pair<uint64_t, uint64_t>, std::string>;

// An error naming the first two tensors whose byte ranges overlap, if any do.
absl::Status CheckNoOverlap(const std::string& path, std::vector<NamedRange> ranges) {
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    const auto& prev = ranges[i - 1];
    const auto& cur = ranges[i];
    if (cur.first.first < prev.first.second) {
      return Invalid(path, absl::StrCat("tensors '", prev.second, "' [", prev.first.first, ", ",
                                        prev.first.second, ") and '", cur.second, "' [",
                                        cur.first.first, ", ", cur.first.second, ") overlap"));
    }
  }
  return absl::OkStatus();
}

// Reads the entries of the parsed `header` into `tensors` (their views point into `data`, the
// `data_size`-byte data section) and `metadata`, checking each and that no two overlap.
absl::Status ReadEntries(const std::string& path, const json& header, const uint8_t* data,
                         uint64_t data_size, std::map<std::string, TensorView>* tensors,
                         std::map<std::string, std::string>* metadata) {
  std::vector<NamedRange> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      RETURN_IF_ERROR(ReadMetadata(path, *it, metadata));
      continue;
    }
    auto parsed = ParseEntry(it.key(), *it, data_size);
    if (!parsed.ok()) {
      return Invalid(path, absl::StrCat("tensor '", it.key(), "': ", parsed.status().message()));
    }
    parsed->first.data = data + parsed->second.first;
    ranges.push_back({parsed->second, it.key()});
    tensors->emplace(it.key(), std::move(parsed->first));
  }
  return CheckNoOverlap(path, std::move(ranges));
}

// The "weight_map" object of a sharded model's index file, read inside `data_roots`.
absl::StatusOr<json> ReadWeightMap(const std::string& model_dir, const std::string& index_path,
                                   const std::vector<std::string>& data_roots) {
  absl::StatusOr<std::string> text = ReadInsideRoots(data_roots, index_path, kMaxWeightIndexBytes);
  if (absl::IsNotFound(text.status())) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", model_dir,
                     "': neither model.safetensors nor model.safetensors.index.json found"));
  }
  if (!text.ok()) return ModelFileError(text.status());
  json index = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") ||
      !index["weight_map"].is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", index_path, "': expected a JSON object with a 'weight_map' object"));
  }
  return std::move(index["weight_map"]);
}

// The shard that the weight_map entry `tensor`: `value` names: a file name in the model directory.
absl::StatusOr<std::string> ShardOf(const std::string& index_path, const std::string& tensor,
                                    const json& value) {
  if (!value.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", index_path, "': weight_map['", tensor, "'] is not a file name"));
  }
  std::string shard = value.get<std::string>();
  if (shard.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("'", index_path, "': shard '", shard,
                                                   "' must be a file name in the model directory"));
  }
  return shard;
}

}  // namespace

absl::StatusOr<uint64_t> TensorByteSize(const std::vector<int64_t>& shape, DType dtype) {
  uint64_t n = DTypeSize(dtype);
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError("negative dimension");
    if (d != 0 && n > UINT64_MAX / static_cast<uint64_t>(d)) {
      return absl::InvalidArgumentError("shape overflows");
    }
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

const char* DTypeName(DType dtype) {
  for (const auto& info : kDTypes) {
    if (info.dtype == dtype) return info.name;
  }
  return "?";
}

absl::StatusOr<DType> ParseDType(const std::string& name) {
  for (const auto& info : kDTypes) {
    if (name == info.name) return info.dtype;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype '", name,
                   "'; expected one of F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL"));
}

size_t DTypeSize(DType dtype) {
  for (const auto& info : kDTypes) {
    if (info.dtype == dtype) return info.size;
  }
  return 0;
}

int64_t TensorView::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) munmap(mapping_, size_);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  absl::StatusOr<ScopedFd> fd = OpenInsideRoots({}, path);
  if (!fd.ok()) return absl::InvalidArgumentError(fd.status().message());
  return Map(path, *std::move(fd));
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Map(const std::string& path,
                                                                      ScopedFd fd) {
  ASSIGN_OR_RETURN(Mapping mapping, MapFile(path, fd));
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  file->size_ = mapping.size;
  file->mapping_ = mapping.addr;
  const auto* bytes = static_cast<const uint8_t*>(mapping.addr);
  ASSIGN_OR_RETURN(uint64_t header_len, HeaderLength(path, bytes, file->size_));
  json header = json::parse(bytes + 8, bytes + 8 + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return Invalid(path, "header is not a JSON object");
  }
  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = file->size_ - 8 - header_len;
  RETURN_IF_ERROR(ReadEntries(path, header, data, data_size, &file->tensors_, &file->metadata_));
  return file;
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> SafetensorsFile::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, view] : tensors_) names.push_back(name);
  return names;
}

absl::StatusOr<std::unique_ptr<SafetensorsModel>> SafetensorsModel::Open(
    const std::string& model_dir, const std::vector<std::string>& data_roots) {
  auto model = std::unique_ptr<SafetensorsModel>(new SafetensorsModel());
  const std::string single = model_dir + "/model.safetensors";
  const std::string index_path = model_dir + "/model.safetensors.index.json";
  struct stat st;
  if (lstat(single.c_str(), &st) == 0) {  // the name exists; OpenModelFile checks where it leads
    ASSIGN_OR_RETURN(auto file, OpenModelFile(single, data_roots));
    for (const auto& name : file->Names()) model->index_[name] = file->Find(name);
    model->files_.push_back(std::move(file));
    return model;
  }
  ASSIGN_OR_RETURN(json weight_map, ReadWeightMap(model_dir, index_path, data_roots));
  std::map<std::string, SafetensorsFile*> shards;
  for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
    ASSIGN_OR_RETURN(std::string shard, ShardOf(index_path, it.key(), *it));
    if (!shards.count(shard)) {
      ASSIGN_OR_RETURN(auto file, OpenModelFile(model_dir + "/" + shard, data_roots));
      shards[shard] = file.get();
      model->files_.push_back(std::move(file));
    }
    const TensorView* view = shards[shard]->Find(it.key());
    if (view == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("'", index_path, "': tensor '", it.key(),
                                                     "' is not in shard '", shard, "'"));
    }
    model->index_[it.key()] = view;
  }
  return model;
}

const TensorView* SafetensorsModel::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::vector<std::string> SafetensorsModel::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, view] : index_) names.push_back(name);
  return names;
}

int64_t SafetensorsModel::total_bytes() const {
  int64_t total = 0;
  for (const auto& file : files_) total += static_cast<int64_t>(file->file_size());
  return total;
}

std::vector<std::string> HfKeySpellings(const std::string& key, const std::string& base_prefix) {
  std::vector<std::string> out = {key};
  if (!base_prefix.empty() && key.rfind(base_prefix, 0) == 0) {
    out.push_back(key.substr(base_prefix.size()));
  }
  const size_t n = out.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string k = out[i];  // a copy: push_back below may reallocate
    for (auto [from, to] :
         {std::pair<const char*, const char*>{"LayerNorm.weight", "LayerNorm.gamma"},
          {"LayerNorm.bias", "LayerNorm.beta"}}) {
      const std::string f(from);
      if (k.size() >= f.size() && k.compare(k.size() - f.size(), f.size(), f) == 0) {
        out.push_back(k.substr(0, k.size() - f.size()) + to);
      }
    }
  }
  return out;
}

}  // namespace attune::engine
