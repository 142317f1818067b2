// Runs a real gRPC server with the default health service and the metrics interceptor, calls it
// through a generic stub, and checks the counters and the histogram in the registry's text form.
#include "server/api/grpc_metrics.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <condition_variable>
#include <mutex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "prometheus/text_serializer.h"

namespace attune::api {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

grpc::Status CallUnary(grpc::GenericStub& stub, const std::string& method) {
  grpc::ClientContext context;
  grpc::ByteBuffer request;  // empty: a valid grpc.health.v1.HealthCheckRequest
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status status) {
                   std::lock_guard<std::mutex> lock(mu);
                   result = std::move(status);
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return result;
}

TEST(GrpcMetricsTest, CountsCallsByMethodAndCode) {
  auto registry = std::make_shared<prometheus::Registry>();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  factories.push_back(MakeGrpcMetricsInterceptorFactory(registry));
  builder.experimental().SetInterceptorCreators(std::move(factories));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);

  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  const std::string check = "/grpc.health.v1.Health/Check";
  EXPECT_TRUE(CallUnary(stub, check).ok());
  EXPECT_TRUE(CallUnary(stub, check).ok());
  server->GetHealthCheckService()->SetServingStatus("no.such.Service", false);
  // An unknown service name in the request would need a non-empty message; instead check that
  // an unregistered method is answered UNIMPLEMENTED and never adds an unbounded label.
  EXPECT_EQ(CallUnary(stub, "/no.such.Service/Method").error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  server->Shutdown();

  const std::string text = prometheus::TextSerializer().Serialize(registry->Collect());
  EXPECT_THAT(text, HasSubstr("attune_grpc_server_started_total{method=\"" + check + "\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("attune_grpc_server_handled_total{code=\"OK\",method=\"" + check +
                              "\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("attune_grpc_server_handling_seconds_count{code=\"OK\",method=\"" +
                              check + "\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("attune_grpc_server_handling_seconds_bucket{code=\"OK\",method=\"" +
                              check + "\",le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, Not(HasSubstr("no.such.Service")));
}

TEST(GrpcMetricsTest, MethodLabelIsBounded) {
  EXPECT_EQ(GrpcMethodLabel("/attune.v1.AttuneService/CreateJob"),
            "/attune.v1.AttuneService/CreateJob");
  EXPECT_EQ(GrpcMethodLabel("/a/b/c"), "other");
  EXPECT_EQ(GrpcMethodLabel("/a b/c"), "other");
  EXPECT_EQ(GrpcMethodLabel("a/b"), "other");
  EXPECT_EQ(GrpcMethodLabel("/a/"), "other");
  EXPECT_EQ(GrpcMethodLabel(nullptr), "other");
}

TEST(GrpcMetricsTest, CodeNames) {
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::NOT_FOUND), "NOT_FOUND");
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
  EXPECT_EQ(GrpcCodeName(static_cast<grpc::StatusCode>(99)), "UNKNOWN");
}

}  // namespace
}  // namespace attune::api
