// Which checkpoint a download means, and the files it carries.
//
// A checkpoint directory (see server/engine/checkpoint.h) holds the PEFT adapter files and
// attune.json at its top and the resume state under resume/. A download is the top-level
// regular files in name order, optionally followed by resume/'s files; their concatenation is
// the "archive" whose sha256 ends the DownloadAdapter stream (see AdapterChunk in attune.proto).
#ifndef ATTUNE_SERVER_API_ADAPTER_ARCHIVE_H_
#define ATTUNE_SERVER_API_ADAPTER_ARCHIVE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/store/records.h"

namespace attune::api {

// Picks from `checkpoints` (any order): "" or "latest" = highest step; "best" = highest
// eval_metric (the latest when none was evaluated); "step:N" = that step. INVALID_ARGUMENT
// naming "checkpoint" for another selector; NOT_FOUND when there is no such checkpoint;
// FAILED_PRECONDITION when `checkpoints` is empty.
absl::StatusOr<store::CheckpointRecord> SelectCheckpoint(
    const std::vector<store::CheckpointRecord>& checkpoints, const std::string& selector);

struct ArchiveFile {
  std::string relative_path;  // e.g. "adapter_model.safetensors", "resume/state.json"
  std::string absolute_path;
  int64_t size = 0;
  int64_t offset = 0;  // start within the archive
};

// Lists the archive's files under `dir`. NOT_FOUND when the directory is gone (pruned).
absl::StatusOr<std::vector<ArchiveFile>> ListArchiveFiles(const std::string& dir,
                                                          bool include_resume_state);

}  // namespace attune::api

#endif  // ATTUNE_SERVER_API_ADAPTER_ARCHIVE_H_
