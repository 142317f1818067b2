// The one place where attune's absl::Status errors become gRPC statuses.
//
// Both use the canonical code numbering, so the code is kept and the message passed through
// unchanged: a client sees exactly the text the layer that found the problem wrote
// ("lora.rank: 0 is out of range; expected 1..4096"), cut at kMaxMessageLength
// (request_limits.h) so that no message quoting a client's long text breaks the response.
#ifndef ATTUNE_SERVER_API_GRPC_STATUS_H_
#define ATTUNE_SERVER_API_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace attune::api {

// Returns grpc::Status::OK for an OK status, else a grpc::Status with the same code and message.
// Thread-safe.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace attune::api

#endif  // ATTUNE_SERVER_API_GRPC_STATUS_H_
