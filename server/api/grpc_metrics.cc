#include "server/api/grpc_metrics.h"

#include <chrono>
#include <cstring>
#include <utility>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"

namespace attune::api {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::InterceptorBatchMethods;
using grpc::experimental::ServerRpcInfo;

// Latency buckets in seconds: 1 ms .. 10 min (a WatchJob stream lives as long as its job).
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* kBuckets = new prometheus::Histogram::BucketBoundaries{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600};
  return *kBuckets;
}

struct Families {
  prometheus::Family<prometheus::Counter>* started;
  prometheus::Family<prometheus::Counter>* handled;
  prometheus::Family<prometheus::Histogram>* seconds;
};

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(const Families& families, std::string method)
      : families_(families), method_(std::move(method)), start_(std::chrono::steady_clock::now()) {
    families_.started->Add({{"method", method_}}).Increment();
  }

  // A call that ends without sending a status (the client went away) counts as CANCELLED.
  ~MetricsInterceptor() override {
    if (!recorded_) Record(grpc::StatusCode::CANCELLED);
  }

  void Intercept(InterceptorBatchMethods* methods) override {
    if (!recorded_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Record(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Record(grpc::StatusCode code) {
    recorded_ = true;
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    const prometheus::Labels labels = {{"method", method_}, {"code", GrpcCodeName(code)}};
    families_.handled->Add(labels).Increment();
    families_.seconds->Add(labels, LatencyBuckets()).Observe(elapsed.count());
  }

  // Constant after construction.
  const Families families_;
  const std::string method_;
  const std::chrono::steady_clock::time_point start_;

  bool recorded_ = false;  // touched only by the call's hooks, which gRPC runs one at a time
};

class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(std::shared_ptr<prometheus::Registry> registry)
      : registry_(std::move(registry)),
        families_{&prometheus::BuildCounter()
                       .Name("attune_grpc_server_started_total")
                       .Help("gRPC calls the server has begun, by method.")
                       .Register(*registry_),
                  &prometheus::BuildCounter()
                       .Name("attune_grpc_server_handled_total")
                       .Help("gRPC calls the server has finished, by method and status code.")
                       .Register(*registry_),
                  &prometheus::BuildHistogram()
                       .Name("attune_grpc_server_handling_seconds")
                       .Help("Time from a gRPC call's start to its final status, in seconds.")
                       .Register(*registry_)} {}

  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    return new MetricsInterceptor(families_, GrpcMethodLabel(info->method()));
  }

 private:
  const std::shared_ptr<prometheus::Registry> registry_;  // keeps the families alive
  const Families families_;
};

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.';
}

}  // namespace

std::string GrpcMethodLabel(const char* path) {
  if (path == nullptr || path[0] != '/') return "other";
  const size_t length = std::strlen(path);
  if (length > 200) return "other";
  int slashes = 0;
  for (size_t i = 1; i < length; ++i) {
    if (path[i] == '/') {
      if (++slashes > 1 || i == 1 || i + 1 == length) return "other";
    } else if (!IsNameChar(path[i])) {
      return "other";
    }
  }
  return slashes == 1 ? std::string(path, length) : "other";
}

std::string GrpcCodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  if (index < 0 || index >= static_cast<int>(sizeof(kNames) / sizeof(kNames[0]))) return "UNKNOWN";
  return kNames[index];
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeGrpcMetricsInterceptorFactory(std::shared_ptr<prometheus::Registry> registry) {
  return std::make_unique<MetricsInterceptorFactory>(std::move(registry));
}

}  // namespace attune::api
