#include "server/api/grpc_status.h"

#include <string>

#include "server/api/request_limits.h"

namespace attune::api {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      Abbreviate(status.message(), kMaxMessageLength));
}

}  // namespace attune::api
