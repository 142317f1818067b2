#include "client/attune_client.h"

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"

namespace attune::client {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  // gRPC and Abseil share the canonical code numbering.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

namespace {

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || text.str().empty()) {
    return absl::InvalidArgumentError(flag + ": cannot read " + path);
  }
  return text.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const ClientOptions& options) {
  if (options.tls_ca_path.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadPem("--tls-ca", options.tls_ca_path);
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *std::move(ca);
  if (!options.tls_cert_path.empty()) {
    absl::StatusOr<std::string> cert = ReadPem("--tls-cert", options.tls_cert_path);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem("--tls-key", options.tls_key_path);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

AttuneClient::AttuneClient(const std::string& address)
    : AttuneClient(address, grpc::InsecureChannelCredentials(), "") {}

AttuneClient::AttuneClient(const std::string& address,
                           std::shared_ptr<grpc::ChannelCredentials> credentials, std::string token)
    : token_(std::move(token)),
      channel_(grpc::CreateChannel(address, std::move(credentials))),
      stub_(v1::Attune::NewStub(channel_)) {}

void AttuneClient::Authorize(grpc::ClientContext* context) const {
  if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
}

void AttuneClient::SetDeadline(grpc::ClientContext* context) const {
  context->set_deadline(std::chrono::system_clock::now() + timeout_);
  Authorize(context);
}

absl::StatusOr<v1::Job> AttuneClient::CreateJob(const v1::CreateJobRequest& request) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::Job job;
  grpc::Status status = stub_->CreateJob(&context, request, &job);
  if (!status.ok()) return FromGrpc(status);
  return job;
}

absl::StatusOr<v1::Job> AttuneClient::GetJob(const std::string& job_id) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  v1::Job job;
  grpc::Status status = stub_->GetJob(&context, request, &job);
  if (!status.ok()) return FromGrpc(status);
  return job;
}

absl::StatusOr<v1::ListJobsResponse> AttuneClient::ListJobs(const v1::ListJobsRequest& request) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ListJobsResponse response;
  grpc::Status status = stub_->ListJobs(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

absl::StatusOr<v1::Job> AttuneClient::CancelJob(const std::string& job_id) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::CancelJobRequest request;
  request.set_job_id(job_id);
  v1::Job job;
  grpc::Status status = stub_->CancelJob(&context, request, &job);
  if (!status.ok()) return FromGrpc(status);
  return job;
}

absl::StatusOr<v1::Job> AttuneClient::PauseJob(const std::string& job_id) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::PauseJobRequest request;
  request.set_job_id(job_id);
  v1::Job job;
  grpc::Status status = stub_->PauseJob(&context, request, &job);
  if (!status.ok()) return FromGrpc(status);
  return job;
}

absl::StatusOr<v1::Job> AttuneClient::ResumeJob(const std::string& job_id) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ResumeJobRequest request;
  request.set_job_id(job_id);
  v1::Job job;
  grpc::Status status = stub_->ResumeJob(&context, request, &job);
  if (!status.ok()) return FromGrpc(status);
  return job;
}

absl::StatusOr<v1::ListCheckpointsResponse> AttuneClient::ListCheckpoints(
    const std::string& job_id) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ListCheckpointsRequest request;
  request.set_job_id(job_id);
  v1::ListCheckpointsResponse response;
  grpc::Status status = stub_->ListCheckpoints(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

absl::StatusOr<v1::DeleteJobResponse> AttuneClient::DeleteJob(const std::string& job_id) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::DeleteJobRequest request;
  request.set_job_id(job_id);
  v1::DeleteJobResponse response;
  grpc::Status status = stub_->DeleteJob(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

absl::Status AttuneClient::WatchJob(const std::string& job_id, int64_t from_sequence,
                                    const std::function<bool(const v1::JobEvent&)>& on_event) {
  grpc::ClientContext context;  // no deadline: a job may run for hours
  Authorize(&context);
  v1::WatchJobRequest request;
  request.set_job_id(job_id);
  request.set_from_sequence(from_sequence);
  std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader = stub_->WatchJob(&context, request);
  v1::JobEvent event;
  while (reader->Read(&event)) {
    if (!on_event(event)) {
      context.TryCancel();
      reader->Finish();
      return absl::OkStatus();
    }
  }
  return FromGrpc(reader->Finish());
}

absl::Status AttuneClient::DownloadAdapter(
    const v1::DownloadAdapterRequest& request,
    const std::function<absl::Status(const v1::AdapterChunk&)>& on_chunk) {
  grpc::ClientContext context;
  Authorize(&context);
  std::unique_ptr<grpc::ClientReader<v1::AdapterChunk>> reader =
      stub_->DownloadAdapter(&context, request);
  v1::AdapterChunk chunk;
  while (reader->Read(&chunk)) {
    absl::Status status = on_chunk(chunk);
    if (!status.ok()) {
      context.TryCancel();
      reader->Finish();
      return status;
    }
  }
  return FromGrpc(reader->Finish());
}

namespace {

// grpc.health.v1 messages, hand-encoded so the client needs no copy of health.proto:
// HealthCheckRequest { string service = 1; }, HealthCheckResponse { ServingStatus status = 1; }.
std::string EncodeHealthRequest(const std::string& service) {
  std::string bytes;
  if (service.empty()) return bytes;
  bytes.push_back(0x0a);  // field 1, length-delimited
  size_t n = service.size();
  while (n >= 0x80) {
    bytes.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  bytes.push_back(static_cast<char>(n));
  return bytes + service;
}

std::string HealthStatusName(int value) {
  switch (value) {
    case 1:
      return "SERVING";
    case 2:
      return "NOT_SERVING";
    case 3:
      return "SERVICE_UNKNOWN";
    default:
      return "UNKNOWN";
  }
}

}  // namespace

absl::StatusOr<std::string> AttuneClient::CheckHealth(const std::string& service) {
  grpc::GenericStub generic(channel_);
  grpc::ClientContext context;
  SetDeadline(&context);
  std::string request_bytes = EncodeHealthRequest(service);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  generic.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&](grpc::Status s) {
                      std::lock_guard<std::mutex> lock(mu);
                      status = std::move(s);
                      done = true;
                      cv.notify_one();
                    });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  if (!status.ok()) return FromGrpc(status);
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::InternalError("health: unreadable response");
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // An empty message means status = 0 (UNKNOWN); otherwise expect tag 0x08 then a varint.
  if (bytes.size() >= 2 && bytes[0] == 0x08) return HealthStatusName(bytes[1]);
  return HealthStatusName(0);
}

}  // namespace attune::client
