// Prometheus metrics for attune's gRPC server: requests and latencies by method and status code,
// collected by a server interceptor so no service method has to remember to count itself.
//
// Series (registered in the registry passed to the factory, served on /metrics):
//   attune_grpc_server_started_total{method}               counter, RPCs begun
//   attune_grpc_server_handled_total{method,code}          counter, RPCs finished
//   attune_grpc_server_handling_seconds{method,code}       histogram, start to final status
//                                                          (a stream's whole life)
// `method` is the full gRPC path ("/attune.v1.AttuneService/CreateJob"); paths that do not look
// like a registered service method are counted as "other", so the label set stays bounded.
// `code` is the canonical name ("OK", "NOT_FOUND", ...).
//
// Usage in main():
//   std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
//   f.push_back(attune::api::MakeGrpcMetricsInterceptorFactory(metrics.shared_registry()));
//   builder.experimental().SetInterceptorCreators(std::move(f));
#ifndef ATTUNE_SERVER_API_GRPC_METRICS_H_
#define ATTUNE_SERVER_API_GRPC_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>

#include "prometheus/registry.h"

namespace attune::api {

// Returns a factory whose interceptors record into `registry`; the families are added now. The
// factory shares ownership of the registry. Thread-safe, as interceptors run on gRPC's threads.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeGrpcMetricsInterceptorFactory(std::shared_ptr<prometheus::Registry> registry);

// "OK", "CANCELLED", ..., "UNAUTHENTICATED"; "UNKNOWN" for values outside the enum.
std::string GrpcCodeName(grpc::StatusCode code);

// The `method` label for a gRPC path: the path itself when it has the form
// "/package.Service/Method" (letters, digits, '_' and '.'), otherwise "other".
std::string GrpcMethodLabel(const char* path);

}  // namespace attune::api

#endif  // ATTUNE_SERVER_API_GRPC_METRICS_H_
