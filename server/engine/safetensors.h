// Reading and writing the safetensors format, in plain C++ (no LibTorch).
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
// "__metadata__": {"key": "value"}}), then the tensor bytes; offsets are relative to the end of
// the header. `SafetensorsFile::Open` maps the file read-only (no copy) and validates the header
// before anything reads a tensor: a sane header length, known dtypes, shapes whose byte size
// matches the offsets, offsets inside the data section and no two tensors overlapping. Hugging
// Face models are one file (`model.safetensors`) or shards listed by
// `model.safetensors.index.json`; `SafetensorsModel` hides the difference.
//
// `WriteSafetensors` writes plain buffers to a path (not atomically: callers that need a crash-safe
// write, such as checkpoints, write to a temporary path and rename). LibTorch helpers live in the
// engine-internal safetensors_torch.h.
#ifndef ATTUNE_SERVER_ENGINE_SAFETENSORS_H_
#define ATTUNE_SERVER_ENGINE_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/confined_file.h"

namespace attune::engine {

// The element types safetensors files hold that attune reads.
enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// "F32", "BF16", ... as spelled in the header.
const char* DTypeName(DType dtype);
// INVALID_ARGUMENT naming the allowed spellings for anything else.
absl::StatusOr<DType> ParseDType(const std::string& name);
// Bytes per element.
size_t DTypeSize(DType dtype);

// product(shape) * DTypeSize(dtype); INVALID_ARGUMENT on a negative dimension or an overflow.
absl::StatusOr<uint64_t> TensorByteSize(const std::vector<int64_t>& shape, DType dtype);
// "[2, 3]".
std::string ShapeString(const std::vector<int64_t>& shape);

// One tensor inside a mapped file. `data` points into the mapping and stays valid while the
// owning SafetensorsFile lives; it may be unaligned (copy before typed access).
struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t byte_size = 0;

  int64_t NumElements() const;
};

// One mapped, validated .safetensors file. Immutable after Open; const methods are thread-safe.
class SafetensorsFile {
 public:
  // Maps `path` and validates its header. INVALID_ARGUMENT, naming the file and the problem, for a
  // missing or unreadable file, a truncated file, a bad header length, malformed JSON, an unknown
  // dtype, a size that does not match the shape, or offsets out of bounds or overlapping. The
  // messages never quote the file's bytes. Opens with no root restriction (checkpoints, tools);
  // a job's model is opened through SafetensorsModel::Open with the data roots.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // The same for the file already open as `fd` (common/confined_file.h), named `path` in
  // messages. The mapping keeps the file; `fd` is closed on return.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Map(const std::string& path, ScopedFd fd);

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();  // unmaps the file; views from Find() become invalid

  // The tensor called `name`, or nullptr. The pointer lives as long as this object.
  const TensorView* Find(const std::string& name) const;
  // Every tensor name, sorted.
  std::vector<std::string> Names() const;
  // The "__metadata__" strings (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }

 private:
  SafetensorsFile() = default;

  // Constant after Open.
  std::string path_;
  void* mapping_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// The weights of a Hugging Face model directory: `model.safetensors`, or the shards that
// `model.safetensors.index.json` lists in its "weight_map". Immutable; const methods thread-safe.
class SafetensorsModel {
 public:
  // Every file (the single file, or the index and its shards) is opened inside `data_roots` at
  // the time of the call (common/confined_file.h; empty = no root restriction). INVALID_ARGUMENT
  // when neither file exists, a file lies outside the roots ("model: /d/m/model.safetensors is
  // outside the data roots (/d)"), the index is malformed, a shard fails to open (see
  // SafetensorsFile::Open), or a tensor the index names is missing from its shard.
  static absl::StatusOr<std::unique_ptr<SafetensorsModel>> Open(
      const std::string& model_dir, const std::vector<std::string>& data_roots = {});

  // The tensor called `name` in whichever shard holds it, or nullptr.
  const TensorView* Find(const std::string& name) const;
  std::vector<std::string> Names() const;  // sorted
  int64_t total_bytes() const;             // sum of the weight files' sizes

 private:
  SafetensorsModel() = default;

  // Constant after Open.
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

// The spellings under which Hugging Face finds the tensor `key`, in the order to try them: the
// key itself; without `base_prefix` ("roberta.", "model.") when it starts with it, as
// transformers loads a base model into a model with a head; and for each, the old LayerNorm
// "gamma"/"beta" names. An empty `base_prefix` strips nothing.
std::vector<std::string> HfKeySpellings(const std::string& key, const std::string& base_prefix);

// One tensor to write: `data` holds `byte_size` bytes in little-endian, row-major order, and must
// equal product(shape) * DTypeSize(dtype). The caller owns the buffer.
struct TensorEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t byte_size = 0;
};

// The complete file contents for `entries` (in the given order) and `metadata`. The header is
// padded with spaces to a multiple of 8 bytes, as the reference implementation does.
// INVALID_ARGUMENT for an empty or duplicate name, "__metadata__" as a name, or a byte size that
// does not match the shape.
absl::StatusOr<std::string> SerializeSafetensors(
    const std::vector<TensorEntry>& entries,
    const std::map<std::string, std::string>& metadata = {});

// Serializes and writes to `path` (created or truncated). The same errors as
// SerializeSafetensors, or INTERNAL when the file cannot be written. Not atomic.
absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorEntry>& entries,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_SAFETENSORS_H_
