// Sends one checkpoint as the chunks of a DownloadAdapter stream (see AdapterChunk in
// attune.proto): the download info, then for each archive file its header and its bytes in
// chunks, then the trailer with the sha256 of the whole archive.
//
// A resumed download asks for a byte `offset` within the archive: every file header is still
// sent (the client needs the layout), but only bytes at or after the offset, while every byte
// is hashed, so the trailer always covers the whole archive. The bytes of
// adapter_model.safetensors are checked against the sha256 recorded when the checkpoint was
// written, so that a file corrupted on the server's disk is reported instead of sent.
//
// No gRPC here: the chunks go to a sink (the service writes them to its ServerWriter; tests
// collect them). Thread-safe: the function keeps no state between calls.
#ifndef ATTUNE_SERVER_API_ADAPTER_STREAM_H_
#define ATTUNE_SERVER_API_ADAPTER_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "attune/v1/attune.pb.h"
#include "server/api/adapter_archive.h"
#include "server/store/records.h"

namespace attune::api {

// Takes each chunk in order; a non-OK status (e.g. CANCELLED: the client went away) ends the
// stream with that status.
using ChunkSink = std::function<absl::Status(const v1::AdapterChunk&)>;

// Data bytes per chunk: the proto promises at most 256 KiB.
inline constexpr size_t kAdapterChunkBytes = 256 * 1024;

// Streams `checkpoint`'s `files` (from ListArchiveFiles, in archive order) to `sink`, starting at
// byte `offset` of the archive, in data chunks of at most `chunk_bytes`. Returns OK after the
// trailer was taken, or:
//   INVALID_ARGUMENT "offset: 12 is out of range; the archive has 10 bytes" (also for < 0);
//   NOT_FOUND "checkpoint: cannot read PATH" when a file is gone (pruned meanwhile);
//   DATA_LOSS "checkpoint: PATH is shorter than it was a moment ago" when a file shrinks while
//     it is sent, and "checkpoint: step N adapter_model.safetensors is corrupt on the server
//     (sha256 X, recorded Y)" when its bytes do not match `checkpoint.sha256` (not checked when
//     that is empty); the trailer is not sent then;
//   the sink's status when it fails;
//   INTERNAL when hashing fails.
absl::Status StreamAdapter(const std::string& job_id, const store::CheckpointRecord& checkpoint,
                           const std::vector<ArchiveFile>& files, int64_t offset,
                           const ChunkSink& sink, size_t chunk_bytes = kAdapterChunkBytes);

}  // namespace attune::api

#endif  // ATTUNE_SERVER_API_ADAPTER_STREAM_H_
