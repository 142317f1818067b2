#include "client/adapter_download.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/remove_tree.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

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
  if (!out.good())
    return absl::InternalError(
        absl::StrCat("download: cannot write ", (partial / kMarker).string()));
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
    marker.files.push_back(
        {f.value("path", ""), f.value("size", int64_t{0}), f.value("offset", int64_t{0})});
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

absl::StatusOr<std::string> Sha256OfFiles(const fs::path& dir,
                                          const std::vector<FileEntry>& files) {
  std::vector<std::string> paths;
  for (const FileEntry& f : files) paths.push_back((dir / f.path).string());
  return Sha256Files(paths);
}

// Step 1, the resume marker: builds the request, asking for the step and the byte offset a
// broken attempt left in `partial`, or starts `partial` afresh. Sets result->resumed_from.
absl::StatusOr<v1::DownloadAdapterRequest> PrepareRequest(const DownloadOptions& options,
                                                          const fs::path& partial,
                                                          DownloadResult* result) {
  v1::DownloadAdapterRequest request;
  request.set_job_id(options.job_id);
  request.set_checkpoint(options.checkpoint);
  request.set_include_resume_state(options.include_resume_state);
  std::optional<Marker> previous = ReadMarker(partial);
  if (previous && previous->job_id == options.job_id && previous->step > 0) {
    request.set_checkpoint(absl::StrCat("step:", previous->step));
    request.set_offset(ContiguousBytes(partial, *previous));
    result->resumed_from = request.offset();
    return request;
  }
  RemoveTree(partial.string());
  std::error_code ec;
  fs::create_directories(partial, ec);
  if (ec) return absl::InternalError(absl::StrCat("download: cannot create ", partial.string()));
  return request;
}

// Step 2, the stream: writes the chunks of one DownloadAdapter call into `partial`, keeping the
// marker up to date so that a broken stream can resume. Not thread-safe.
class ChunkWriter {
 public:
  ChunkWriter(fs::path partial, const std::string& job_id, int64_t offset,
              std::function<void(int64_t, int64_t)> on_progress)
      : partial_(std::move(partial)),
        offset_(offset),
        received_(offset),
        on_progress_(std::move(on_progress)) {
    marker_.job_id = job_id;
  }

  absl::Status Write(const v1::AdapterChunk& chunk) {
    switch (chunk.chunk_case()) {
      case v1::AdapterChunk::kInfo:
        marker_.step = chunk.info().step();
        marker_.total = chunk.info().total_size();
        return absl::OkStatus();
      case v1::AdapterChunk::kFile:
        return StartFile(chunk.file());
      case v1::AdapterChunk::kData:
        return WriteData(chunk.data());
      case v1::AdapterChunk::kTrailer:
        server_sha_ = chunk.trailer().sha256();
        return absl::OkStatus();
      case v1::AdapterChunk::CHUNK_NOT_SET:
        break;
    }
    return absl::OkStatus();
  }

  void Close() {
    if (out_.is_open()) out_.close();
  }
  const Marker& marker() const { return marker_; }
  // Archive bytes on disk, contiguous from the start, after what this stream brought.
  int64_t received() const { return received_; }
  // The trailer's sha256; empty when no trailer arrived.
  const std::string& server_sha() const { return server_sha_; }

 private:
  absl::Status StartFile(const v1::AdapterChunk::FileHeader& h) {
    if (!SafeRelativePath(h.path())) {
      return absl::DataLossError(absl::StrCat("download: unsafe file path '", h.path(), "'"));
    }
    marker_.files.push_back({h.path(), h.size(), h.offset()});
    RETURN_IF_ERROR(WriteMarker(partial_, marker_));
    Close();
    fs::path path = partial_ / h.path();
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (h.offset() + h.size() <= offset_) return absl::OkStatus();  // already complete
    // Keep the bytes before the offset; drop anything after it.
    int64_t keep = std::max<int64_t>(0, offset_ - h.offset());
    if (keep == 0) {
      out_.open(path, std::ios::binary | std::ios::trunc);
    } else {
      fs::resize_file(path, keep, ec);
      out_.open(path, std::ios::binary | std::ios::app);
    }
    if (!out_) return absl::InternalError(absl::StrCat("download: cannot write ", path.string()));
    return absl::OkStatus();
  }

  absl::Status WriteData(const std::string& data) {
    if (!out_.is_open()) return absl::DataLossError("download: data before a file header");
    out_.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out_) return absl::InternalError("download: write failed");
    received_ += static_cast<int64_t>(data.size());
    if (on_progress_) on_progress_(received_, marker_.total);
    return absl::OkStatus();
  }

  // Constant after construction.
  const fs::path partial_;
  const int64_t offset_;  // where this stream starts within the archive
  const std::function<void(int64_t, int64_t)> on_progress_;

  Marker marker_;
  std::ofstream out_;  // the file being written, if any
  int64_t received_;   // archive bytes on disk, contiguous from the start
  std::string server_sha_;
};

// Step 3a, complete: the stream brought every byte its info declared, and each file has the
// size its header declared. DATA_LOSS otherwise; the partial directory stays, so that the next
// attempt resumes.
absl::Status CheckComplete(const fs::path& partial, const ChunkWriter& writer) {
  const Marker& marker = writer.marker();
  if (writer.received() != marker.total) {
    return absl::DataLossError(absl::StrCat("download: the stream ended after ", writer.received(),
                                            " of ", marker.total, " bytes"));
  }
  for (const FileEntry& f : marker.files) {
    std::error_code ec;
    const int64_t size = static_cast<int64_t>(fs::file_size(partial / f.path, ec));
    const int64_t have = ec ? 0 : size;
    if (have != f.size) {
      return absl::DataLossError(
          absl::StrCat("download: ", f.path, " has ", have, " of its ", f.size, " bytes"));
    }
  }
  return absl::OkStatus();
}

// Step 3b, verify: the local files' sha256 when it equals the server's; otherwise removes the
// partial directory (the next attempt starts from scratch) and returns DATA_LOSS.
absl::StatusOr<std::string> VerifyArchive(const fs::path& partial, const ChunkWriter& writer) {
  if (writer.server_sha().empty()) {
    return absl::DataLossError("download: the stream ended without a trailer");
  }
  ASSIGN_OR_RETURN(std::string local_sha, Sha256OfFiles(partial, writer.marker().files));
  if (local_sha != writer.server_sha()) {
    RemoveTree(partial.string());
    return absl::DataLossError(absl::StrCat("download: checksum mismatch: server sent sha256 ",
                                            writer.server_sha(), ", the files hash to ", local_sha,
                                            "; removed the partial download, run it again"));
  }
  return local_sha;
}

// Step 4, commit: drops the marker and renames `partial` to `dest` (replacing an empty dir).
absl::Status Commit(const fs::path& partial, const fs::path& dest) {
  std::error_code ec;
  fs::remove(partial / kMarker, ec);
  if (fs::exists(dest)) fs::remove(dest, ec);  // an empty directory
  fs::rename(partial, dest, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("download: cannot rename ", partial.string(), " to ",
                                            dest.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DownloadResult> DownloadAdapterTo(AttuneClient& client,
                                                 const DownloadOptions& options) {
  const fs::path dest = fs::absolute(fs::path(options.dir)).lexically_normal();
  const fs::path partial = fs::path(dest.string() + ".partial");
  if (fs::exists(dest) && !(fs::is_directory(dest) && fs::is_empty(dest))) {
    return absl::AlreadyExistsError(
        absl::StrCat("download: ", dest.string(), " exists and is not empty"));
  }
  DownloadResult result;
  ASSIGN_OR_RETURN(v1::DownloadAdapterRequest request, PrepareRequest(options, partial, &result));
  ChunkWriter writer(partial, options.job_id, request.offset(), options.on_progress);
  absl::Status status = client.DownloadAdapter(
      request, [&writer](const v1::AdapterChunk& chunk) { return writer.Write(chunk); });
  writer.Close();
  RETURN_IF_ERROR(status);
  RETURN_IF_ERROR(CheckComplete(partial, writer));
  ASSIGN_OR_RETURN(result.sha256, VerifyArchive(partial, writer));
  RETURN_IF_ERROR(Commit(partial, dest));
  result.step = writer.marker().step;
  result.bytes = writer.marker().total;
  result.file_count = static_cast<int>(writer.marker().files.size());
  return result;
}

}  // namespace attune::client
