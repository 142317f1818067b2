// The engine's progress types to and from the worker protocol's messages
// (proto/attune/worker/v1/worker.proto), field for field: what a worker reports arrives in
// attuned as the very values the engine gave it (doubles bit for bit).
#ifndef ATTUNE_SERVER_WORKER_WORKER_PROTOCOL_H_
#define ATTUNE_SERVER_WORKER_WORKER_PROTOCOL_H_

#include "absl/status/statusor.h"
#include "attune/worker/v1/worker.pb.h"
#include "server/engine/trainer.h"

namespace attune::worker {

namespace wire = ::attune::worker::v1;

wire::Started ToWire(const engine::SpecCheck& setup, int64_t resumed_from_step);
engine::SpecCheck FromWire(const wire::Started& started);

wire::StepMetrics ToWire(const StepMetrics& metrics);
StepMetrics FromWire(const wire::StepMetrics& metrics);

wire::EvalMetrics ToWire(const EvalMetrics& metrics);
EvalMetrics FromWire(const wire::EvalMetrics& metrics);

wire::CheckpointInfo ToWire(const engine::CheckpointInfo& checkpoint);
engine::CheckpointInfo FromWire(const wire::CheckpointInfo& checkpoint);

// A result, or the error status, as the worker's last report.
wire::Finished ToWire(const absl::StatusOr<engine::TrainResult>& result);
absl::StatusOr<engine::TrainResult> FromWire(const wire::Finished& finished);

// The worker token (attuned --worker-token-file, attune-worker --join-token-file): the file's
// first line. INVALID_ARGUMENT naming `flag` when the file is missing or that line is empty.
absl::StatusOr<std::string> ReadWorkerToken(const std::string& flag, const std::string& path);

}  // namespace attune::worker

#endif  // ATTUNE_SERVER_WORKER_WORKER_PROTOCOL_H_
