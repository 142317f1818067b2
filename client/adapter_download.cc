#include "client/adapter_download.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "common/remove_tree.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace attune::client {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kMarker[] = ".attune-download.json";

struct FileEntry {
  std::string path;
  int64_t size = 0;
  int64_t offset = 0;
};

// What a previous attempt left in the partial directory.
struct Marker {
  std::string job_id;
  int64_t step = 0;
  int64_t total = 0;
  std::vector<FileEntry> files;
};

absl::Status WriteMarker(const fs::path& partial, const Marker& marker) {
  json doc = {{"job_id", marker.job_id}, {"step", marker.step}, {"total", marker.total}};
  doc["files"] = json::array();
  for (const FileEntry& f : marker.files) {
    doc["files"].push_back({{"path", f.path}, {"size", f.size}, {"offset", f.offset}});
  }
  std::ofstream out(partial / kMarker, std::ios::trunc);
  out << doc.dump();
  if (!out.good()) return absl::InternalError(absl::StrCat("download: cannot write ", (partial / kMarker).string()));
  return absl::OkStatus();
}

std::optional<Marker> ReadMarker(const fs::path& partial) {
  std::ifstream in(partial / kMarker);
  if (!in) return std::nullopt;
  json doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return std::nullopt;
  Marker marker;
  marker.job_id = doc.value("job_id", "");
  marker.step = doc.value("step", int64_t{0});
  marker.total = doc.value("total", int64_t{0});
  for (const json& f : doc.value("files", json::array())) {
    marker.files.push_back({f.value("path", ""), f.value("size", int64_t{0}),
                            f.value("offset", int64_t{0})});
  }
  return marker;
}

// Bytes of the archive already on disk, contiguous from the start.
int64_t ContiguousBytes(const fs::path& partial, const Marker& marker) {
  int64_t offset = 0;
  for (const FileEntry& f : marker.files) {
    std::error_code ec;
    int64_t have = static_cast<int64_t>(fs::file_size(partial / f.path, ec));
    if (ec) have = 0;
    if (have < f.size) return f.offset + have;
    offset = f.offset + f.size;
  }
  return offset;
}

// A relative path that stays inside the directory (no "..", not absolute).
bool SafeRelativePath(const std::string& path) {
  fs::path p(path);
  if (path.empty() || p.is_absolute()) return false;
  for (const fs::path& part : p) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

absl::StatusOr<std::string> Sha256OfFiles(const fs::path& dir, const std::vector<FileEntry>& files) {
  std::vector<std::string> paths;
  for (const FileEntry& f : files) paths.push_back((dir / f.path).string());
  return Sha256Files(paths);
}

}  // namespace

absl::StatusOr<DownloadResult> DownloadAdapterTo(AttuneClient& client,
                                                 const DownloadOptions& options) {
  const fs::path dest = fs::absolute(fs::path(options.dir)).lexically_normal();
  const fs::path partial = fs::path(dest.string() + ".partial");
  std::error_code ec;
  if (fs::exists(dest) && !(fs::is_directory(dest) && fs::is_empty(dest))) {
    return absl::AlreadyExistsError(
        absl::StrCat("download: ", dest.string(), " exists and is not empty"));
  }

  v1::DownloadAdapterRequest request;
  request.set_job_id(options.job_id);
  request.set_checkpoint(options.checkpoint);
  request.set_include_resume_state(options.include_resume_state);
  DownloadResult result;

  std::optional<Marker> previous = ReadMarker(partial);
  if (previous && previous->job_id == options.job_id && previous->step > 0) {
    request.set_checkpoint(absl::StrCat("step:", previous->step));
    request.set_offset(ContiguousBytes(partial, *previous));
    result.resumed_from = request.offset();
  } else {
    RemoveTree(partial.string());
    fs::create_directories(partial, ec);
    if (ec) return absl::InternalError(absl::StrCat("download: cannot create ", partial.string()));
  }

  Marker marker;
  marker.job_id = options.job_id;
  std::ofstream out;
  int64_t received = request.offset();
  std::string server_sha;
  const int64_t offset = request.offset();

  absl::Status status = client.DownloadAdapter(request, [&](const v1::AdapterChunk& chunk) -> absl::Status {
    switch (chunk.chunk_case()) {
      case v1::AdapterChunk::kInfo:
        marker.step = chunk.info().step();
        marker.total = chunk.info().total_size();
        return absl::OkStatus();
      case v1::AdapterChunk::kFile: {
        const auto& h = chunk.file();
        if (!SafeRelativePath(h.path())) {
          return absl::DataLossError(absl::StrCat("download: unsafe file path '", h.path(), "'"));
        }
        marker.files.push_back({h.path(), h.size(), h.offset()});
        RETURN_IF_ERROR(WriteMarker(partial, marker));
        if (out.is_open()) out.close();
        fs::path path = partial / h.path();
        fs::create_directories(path.parent_path());
        if (h.offset() + h.size() <= offset) return absl::OkStatus();  // already complete
        // Keep the bytes before `offset`; drop anything after it.
        int64_t keep = std::max<int64_t>(0, offset - h.offset());
        if (keep == 0) {
          out.open(path, std::ios::binary | std::ios::trunc);
        } else {
          fs::resize_file(path, keep, ec);
          out.open(path, std::ios::binary | std::ios::app);
        }
        if (!out) return absl::InternalError(absl::StrCat("download: cannot write ", path.string()));
        return absl::OkStatus();
      }
      case v1::AdapterChunk::kData:
        if (!out.is_open()) return absl::DataLossError("download: data before a file header");
        out.write(chunk.data().data(), chunk.data().size());
        if (!out) return absl::InternalError("download: write failed");
        received += static_cast<int64_t>(chunk.data().size());
        if (options.on_progress) options.on_progress(received, marker.total);
        return absl::OkStatus();
      case v1::AdapterChunk::kTrailer:
        server_sha = chunk.trailer().sha256();
        return absl::OkStatus();
      case v1::AdapterChunk::CHUNK_NOT_SET:
        break;
    }
    return absl::OkStatus();
  });
  if (out.is_open()) out.close();
  RETURN_IF_ERROR(status);
  if (server_sha.empty()) return absl::DataLossError("download: the stream ended without a trailer");

  ASSIGN_OR_RETURN(std::string local_sha, Sha256OfFiles(partial, marker.files));
  if (local_sha != server_sha) {
    RemoveTree(partial.string());
    return absl::DataLossError(absl::StrCat("download: checksum mismatch: server sent sha256 ",
                                            server_sha, ", the files hash to ", local_sha,
                                            "; removed the partial download, run it again"));
  }
  fs::remove(partial / kMarker, ec);
  if (fs::exists(dest)) fs::remove(dest, ec);  // an empty directory
  fs::rename(partial, dest, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("download: cannot rename ", partial.string(), " to ",
                                            dest.string(), ": ", ec.message()));
  }
  result.step = marker.step;
  result.bytes = marker.total;
  result.sha256 = local_sha;
  result.file_count = static_cast<int>(marker.files.size());
  return result;
}

}  // namespace attune::client
