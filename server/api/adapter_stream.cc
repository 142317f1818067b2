#include "server/api/adapter_stream.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace attune::api {
namespace {

constexpr char kSafetensors[] = "adapter_model.safetensors";

int64_t ArchiveSize(const std::vector<ArchiveFile>& files) {
  return files.empty() ? 0 : files.back().offset + files.back().size;
}

absl::Status SendInfo(const std::string& job_id, const store::CheckpointRecord& checkpoint,
                      const std::vector<ArchiveFile>& files, const ChunkSink& sink) {
  v1::AdapterChunk info;
  info.mutable_info()->set_job_id(job_id);
  info.mutable_info()->set_step(checkpoint.step);
  info.mutable_info()->set_total_size(ArchiveSize(files));
  info.mutable_info()->set_file_count(static_cast<int>(files.size()));
  return sink(info);
}

absl::Status SendHeader(const ArchiveFile& file, const ChunkSink& sink) {
  v1::AdapterChunk header;
  header.mutable_file()->set_path(file.relative_path);
  header.mutable_file()->set_size(file.size);
  header.mutable_file()->set_offset(file.offset);
  return sink(header);
}

// Reads `file` whole, adding every byte to `archive_hash` and sending those at or after
// `offset`. Returns the file's own sha256.
absl::StatusOr<std::string> SendFileBytes(const ArchiveFile& file, int64_t offset,
                                          size_t chunk_bytes, Sha256* archive_hash,
                                          const ChunkSink& sink) {
  std::ifstream in(file.absolute_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("checkpoint: cannot read ", file.absolute_path));
  Sha256 file_hash;
  std::string buffer(chunk_bytes, '\0');
  int64_t position = file.offset;
  while (position < file.offset + file.size) {
    int64_t want = std::min<int64_t>(chunk_bytes, file.offset + file.size - position);
    in.read(buffer.data(), want);
    std::streamsize n = in.gcount();
    if (n <= 0) {
      return absl::DataLossError(
          absl::StrCat("checkpoint: ", file.absolute_path, " is shorter than it was a moment ago"));
    }
    archive_hash->Update(buffer.data(), n);
    file_hash.Update(buffer.data(), n);
    int64_t skip = std::max<int64_t>(0, offset - position);
    if (skip < n) {
      v1::AdapterChunk data;
      data.set_data(buffer.data() + skip, n - skip);
      RETURN_IF_ERROR(sink(data));
    }
    position += n;
  }
  return file_hash.HexDigest();
}

absl::Status CheckRecordedSha(const store::CheckpointRecord& checkpoint,
                              const std::string& actual) {
  if (checkpoint.sha256.empty() || actual == checkpoint.sha256) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("checkpoint: step ", checkpoint.step, " ", kSafetensors,
                                          " is corrupt on the server (sha256 ", actual,
                                          ", recorded ", checkpoint.sha256, ")"));
}

}  // namespace

absl::Status StreamAdapter(const std::string& job_id, const store::CheckpointRecord& checkpoint,
                           const std::vector<ArchiveFile>& files, int64_t offset,
                           const ChunkSink& sink, size_t chunk_bytes) {
  const int64_t total = ArchiveSize(files);
  if (offset < 0 || offset > total) {
    return absl::InvalidArgumentError(
        absl::StrCat("offset: ", offset, " is out of range; the archive has ", total, " bytes"));
  }
  chunk_bytes = std::max<size_t>(1, chunk_bytes);
  RETURN_IF_ERROR(SendInfo(job_id, checkpoint, files, sink));
  Sha256 archive_hash;
  for (const ArchiveFile& file : files) {
    RETURN_IF_ERROR(SendHeader(file, sink));
    ASSIGN_OR_RETURN(std::string file_sha,
                     SendFileBytes(file, offset, chunk_bytes, &archive_hash, sink));
    if (file.relative_path == kSafetensors) RETURN_IF_ERROR(CheckRecordedSha(checkpoint, file_sha));
  }
  ASSIGN_OR_RETURN(std::string archive_sha, archive_hash.HexDigest());
  v1::AdapterChunk trailer;
  trailer.mutable_trailer()->set_sha256(archive_sha);
  return sink(trailer);
}

}  // namespace attune::api
