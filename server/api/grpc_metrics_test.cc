// Runs a real gRPC server with a two-method service (written by hand over ByteBuffer, as generated
// code would be) and the metrics interceptor, calls it through a generic stub, and checks the
// counters and the histogram in the registry's text form.
#include "server/api/grpc_metrics.h"

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/method_handler.h>
#include <grpcpp/impl/codegen/rpc_service_method.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "prometheus/text_serializer.h"

namespace attune::api {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// "/test.Echo/Ok" answers OK, "/test.Echo/Missing" answers NOT_FOUND.
class EchoService : public grpc::Service {
 public:
  EchoService() {
    Add("/test.Echo/Ok", grpc::Status::OK);
    Add("/test.Echo/Missing", grpc::Status(grpc::StatusCode::NOT_FOUND, "no such thing"));
  }

 private:
  void Add(const char* name, grpc::Status answer) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        name, grpc::internal::RpcMethod::NORMAL_RPC,
        new grpc::internal::RpcMethodHandler<EchoService, grpc::ByteBuffer, grpc::ByteBuffer>(
            [answer](EchoService*, grpc::ServerContext*, const grpc::ByteBuffer* request,
                     grpc::ByteBuffer* response) {
              *response = *request;
              return answer;
            },
            this)));
  }
};

grpc::Status CallUnary(grpc::GenericStub& stub, const std::string& method) {
  grpc::ClientContext context;
  grpc::Slice slice(std::string("ping"));
  grpc::ByteBuffer request(&slice, 1);
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
  EchoService service;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
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
  const std::string check = "/test.Echo/Ok";
  EXPECT_TRUE(CallUnary(stub, check).ok());
  EXPECT_TRUE(CallUnary(stub, check).ok());
  EXPECT_EQ(CallUnary(stub, "/test.Echo/Missing").error_code(), grpc::StatusCode::NOT_FOUND);
  // A method the server does not have is answered UNIMPLEMENTED and adds no label of its own.
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
  EXPECT_THAT(text, HasSubstr("attune_grpc_server_handled_total{code=\"NOT_FOUND\",method=\"/"
                              "test.Echo/Missing\"} 1\n"));
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
