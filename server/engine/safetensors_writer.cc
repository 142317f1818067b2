// Writing safetensors files (SerializeSafetensors, WriteSafetensors in safetensors.h); the
// reader is safetensors.cc.
#include <cerrno>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/os_error.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "server/engine/safetensors.h"

namespace attune::engine {

using nlohmann::json;

absl::StatusOr<std::string> SerializeSafetensors(
    const std::vector<TensorEntry>& entries, const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::set<std::string> seen;
  for (const TensorEntry& e : entries) {
    if (e.name.empty() || e.name == "__metadata__") {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors: invalid tensor name '", e.name, "'"));
    }
    if (!seen.insert(e.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors: duplicate tensor '", e.name, "'"));
    }
    ASSIGN_OR_RETURN(uint64_t expected, TensorByteSize(e.shape, e.dtype));
    if (expected != e.byte_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors: tensor '", e.name, "' has ", e.byte_size, " bytes but shape ",
                       ShapeString(e.shape), " of ", DTypeName(e.dtype), " needs ", expected));
    }
    header[e.name] = {{"dtype", std::string(DTypeName(e.dtype))},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + e.byte_size}}};
    offset += e.byte_size;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += text;
  for (const TensorEntry& e : entries) {
    if (e.byte_size > 0) out.append(static_cast<const char*>(e.data), e.byte_size);
  }
  return out;
}

absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorEntry>& entries,
                              const std::map<std::string, std::string>& metadata) {
  ASSIGN_OR_RETURN(std::string bytes, SerializeSafetensors(entries, metadata));
  errno = 0;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return OsError(absl::StrCat("safetensors: cannot write '", path, "'"), errno);
  return absl::OkStatus();
}

}  // namespace attune::engine
