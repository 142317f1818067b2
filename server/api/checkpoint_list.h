// ListCheckpoints' answer: a job's checkpoint records joined with the metrics at their steps and
// the digest of what DownloadAdapter would send for each.
//
// "best" is the one rule downloads use (SelectCheckpoint's "best", which ranks by the stored
// eval_metric with common/metrics.h's Outranks); the digest and size are the archive's
// (adapter_archive.h's ListArchiveFiles, hashed with common/sha256.h's Sha256Files), the
// numbers a download's DownloadInfo and Trailer carry without the resume state.
#ifndef ATTUNE_SERVER_API_CHECKPOINT_LIST_H_
#define ATTUNE_SERVER_API_CHECKPOINT_LIST_H_

#include <vector>

#include "absl/status/statusor.h"
#include "attune/v1/attune.pb.h"
#include "server/store/records.h"

namespace attune::api {

// The answer for `job`, whose checkpoint records are `checkpoints` and whose events at their
// steps are `step_events` (store::Store::CheckpointStepEvents: ascending by sequence, the later
// of two events for one step wins). Reads and hashes each checkpoint's files; a checkpoint whose
// directory is gone is listed with bytes 0 and sha256 "". INTERNAL naming the file when a file
// that is there cannot be read. Thread-safe.
absl::StatusOr<v1::ListCheckpointsResponse> ListCheckpointsResponseFor(
    const store::Job& job, const std::vector<store::CheckpointRecord>& checkpoints,
    const std::vector<store::JobEvent>& step_events);

}  // namespace attune::api

#endif  // ATTUNE_SERVER_API_CHECKPOINT_LIST_H_
