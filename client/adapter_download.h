// Downloads a job's adapter checkpoint into a directory: resumable, verified, atomic.
//
// The files arrive into "<dir>.partial/" next to the destination, together with a small
// ".attune-download.json" that records the job, the checkpoint step the server chose and the
// file layout (see AdapterChunk in attune.proto). If a download breaks, running it again finds
// the partial directory, asks the server for the same step from the byte offset it already has,
// and appends. When the trailer arrives the client hashes every file in order and compares with
// the server's sha256; only on a match is "<dir>.partial" renamed to "<dir>" (which must not
// exist yet, or be an empty directory). On a mismatch the partial directory is deleted, so the
// next attempt starts from scratch.
#ifndef ATTUNE_CLIENT_ADAPTER_DOWNLOAD_H_
#define ATTUNE_CLIENT_ADAPTER_DOWNLOAD_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "client/attune_client.h"

namespace attune::client {

struct DownloadOptions {
  std::string job_id;                 // required
  std::string checkpoint = "latest";  // "latest", "best" or "step:N"
  std::string dir;                    // destination directory, required
  bool include_resume_state = false;  // also fetch resume/ (optimizer state etc.)
  // Called after every chunk with (bytes so far, total bytes); may be empty.
  std::function<void(int64_t, int64_t)> on_progress;
};

struct DownloadResult {
  int64_t step = 0;          // the checkpoint downloaded
  int64_t bytes = 0;         // total size of the files
  int64_t resumed_from = 0;  // bytes that were already there from a broken attempt
  std::string sha256;        // verified archive checksum
  int file_count = 0;
};

// Runs the download described above. Errors: the RPC's status (NOT_FOUND for an unknown job or
// checkpoint, ...); DATA_LOSS when the stream ends short of the size it declared ("download: the
// stream ended after N of M bytes") or the checksum does not match; ALREADY_EXISTS when `dir`
// exists and is not empty; INTERNAL on local I/O errors. Not thread-safe for the same `dir`.
absl::StatusOr<DownloadResult> DownloadAdapterTo(AttuneClient& client,
                                                 const DownloadOptions& options);

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_ADAPTER_DOWNLOAD_H_
