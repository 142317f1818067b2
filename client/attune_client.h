// A small blocking client for the attune.v1.Attune service, used by the `attune` CLI and the
// integration tests.
//
// Each method makes one RPC and turns the gRPC status into an absl::Status with the same code
// and the server's message, so callers handle errors like any other value. The client never
// includes server code: it speaks only the generated proto types.
#ifndef ATTUNE_CLIENT_ATTUNE_CLIENT_H_
#define ATTUNE_CLIENT_ATTUNE_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "attune/v1/attune.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace attune::client {

// Converts a gRPC status to the absl::Status with the same code and message.
absl::Status FromGrpc(const grpc::Status& status);

// How the client reaches and proves itself to the server.
struct ClientOptions {
  // Sent as `authorization: Bearer TOKEN` on every call; "" = none (a loopback server without
  // --auth-tokens).
  std::string token;
  // PEM CA bundle that the server's certificate must chain to; "" = plaintext.
  std::string tls_ca_path;
  // PEM client certificate and key, for a server that requires mutual TLS; "" = none.
  std::string tls_cert_path;
  std::string tls_key_path;
};

// The channel credentials for `options`: TLS when tls_ca_path is set (INVALID_ARGUMENT naming
// --tls-ca, --tls-cert or --tls-key when a file cannot be read), else plaintext.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const ClientOptions& options);

class AttuneClient {
 public:
  // Connects lazily to `address` ("host:port") over an insecure channel. Never fails here;
  // an unreachable server shows up as UNAVAILABLE on the first call.
  explicit AttuneClient(const std::string& address);
  // The same with `credentials` (ChannelCredentialsFor) and `token` sent on every call.
  AttuneClient(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials,
               std::string token);

  // Deadline for unary calls. Default 30 s.
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

  absl::StatusOr<v1::Job> CreateJob(const v1::CreateJobRequest& request);
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request);
  absl::StatusOr<v1::Job> CancelJob(const std::string& job_id);
  absl::StatusOr<v1::Job> PauseJob(const std::string& job_id);
  absl::StatusOr<v1::Job> ResumeJob(const std::string& job_id);
  absl::StatusOr<v1::ListCheckpointsResponse> ListCheckpoints(const std::string& job_id);
  absl::StatusOr<v1::DeleteJobResponse> DeleteJob(const std::string& job_id);

  // Follows the job's events with sequence > `from_sequence`, calling `on_event` for each, until
  // the server ends the stream (after the terminal state) or `on_event` returns false. Returns
  // OK when the stream ended normally, else the RPC's error.
  absl::Status WatchJob(const std::string& job_id, int64_t from_sequence,
                        const std::function<bool(const v1::JobEvent&)>& on_event);

  // Streams a DownloadAdapter call, calling `on_chunk` for each message. Returns OK when the
  // stream ended normally, the first non-OK status `on_chunk` returns, or the RPC's error.
  absl::Status DownloadAdapter(
      const v1::DownloadAdapterRequest& request,
      const std::function<absl::Status(const v1::AdapterChunk&)>& on_chunk);

  // Asks the standard grpc.health.v1.Health service about `service` ("" = the whole server).
  // Returns "SERVING", "NOT_SERVING", "UNKNOWN" or "SERVICE_UNKNOWN", or the RPC's error.
  absl::StatusOr<std::string> CheckHealth(const std::string& service);

 private:
  void SetDeadline(grpc::ClientContext* context) const;
  // Adds the token's metadata (every call does this).
  void Authorize(grpc::ClientContext* context) const;

  const std::string token_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Attune::Stub> stub_;
  std::chrono::milliseconds timeout_{30000};
};

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_ATTUNE_CLIENT_H_
