#include "tests/job_waits.h"

#include <chrono>
#include <memory>
#include <thread>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace attune::testing {

v1::Job WaitForJob(client::AttuneClient& client, const std::string& id,
                   const std::function<bool(const v1::Job&)>& done, int timeout_s) {
  v1::Job job;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    auto got = client.GetJob(id);
    if (got.ok()) {
      job = *got;
      if (done(job)) return job;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "job " << id << " did not reach the expected condition; last state "
                << v1::JobState_Name(job.state()) << " step " << job.current_step();
  return job;
}

absl::Status WatchJobFor(const std::string& address, const std::string& id, int64_t from_sequence,
                         int timeout_s, const std::function<bool(const v1::JobEvent&)>& on_event,
                         const std::string& token) {
  std::unique_ptr<v1::Attune::Stub> stub =
      v1::Attune::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  v1::WatchJobRequest request;
  request.set_job_id(id);
  request.set_from_sequence(from_sequence);
  std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader = stub->WatchJob(&context, request);
  v1::JobEvent event;
  while (reader->Read(&event)) {
    if (!on_event(event)) {
      context.TryCancel();
      reader->Finish();
      return absl::OkStatus();
    }
  }
  const grpc::Status status = reader->Finish();
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ADD_FAILURE() << "watching job " << id << " from sequence " << from_sequence
                  << " did not end within " << timeout_s << " s";
  }
  return client::FromGrpc(status);
}

bool IsTerminal(const v1::Job& job) {
  return job.state() == v1::SUCCEEDED || job.state() == v1::FAILED || job.state() == v1::CANCELLED;
}

}  // namespace attune::testing
