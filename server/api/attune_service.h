// The attune.v1.Attune gRPC service: a thin adapter over the Scheduler and the Store.
//
// Each method validates and converts its request (proto -> plain C++ records, paths checked
// against the data roots), delegates to the scheduler or the store, converts the answer back,
// and turns errors into gRPC statuses in one place (ToGrpcStatus). No training or SQL here, and
// no file reading: DownloadAdapter's chunks and hashes come from StreamAdapter (adapter_stream.h).
//
// Uses gRPC's synchronous API: each call runs on a thread of gRPC's pool. WatchJob holds its
// thread while it waits for events (in 1 s slices, so a cancelled client or a server shutdown
// is noticed within a second).
#ifndef ATTUNE_SERVER_API_ATTUNE_SERVICE_H_
#define ATTUNE_SERVER_API_ATTUNE_SERVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "attune/v1/attune.grpc.pb.h"
#include "server/api/data_roots.h"
#include "server/scheduler/scheduler.h"
#include "server/store/store.h"

namespace attune::api {

class AttuneService final : public v1::Attune::Service {
 public:
  // `scheduler` and `store` are not owned and must outlive the service (and the gRPC server
  // that runs it). Thread-safe: every method may run concurrently.
  AttuneService(scheduler::Scheduler* scheduler, store::Store* store, DataRoots data_roots);

  grpc::Status CreateJob(grpc::ServerContext* context, const v1::CreateJobRequest* request,
                         v1::Job* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::Job* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::JobEvent>* writer) override;
  grpc::Status DownloadAdapter(grpc::ServerContext* context,
                               const v1::DownloadAdapterRequest* request,
                               grpc::ServerWriter<v1::AdapterChunk>* writer) override;

 private:
  // The bodies, returning absl::Status; the overrides above only convert.
  absl::StatusOr<v1::Job> DoCreateJob(const v1::CreateJobRequest& request);
  absl::StatusOr<v1::Job> DoGetJob(const v1::GetJobRequest& request);
  absl::StatusOr<v1::Job> DoCancelJob(const v1::CancelJobRequest& request);
  absl::StatusOr<v1::ListJobsResponse> DoListJobs(const v1::ListJobsRequest& request);
  absl::Status DoWatchJob(grpc::ServerContext* context, const v1::WatchJobRequest& request,
                          grpc::ServerWriter<v1::JobEvent>* writer);
  absl::Status DoDownloadAdapter(grpc::ServerContext* context,
                                 const v1::DownloadAdapterRequest& request,
                                 grpc::ServerWriter<v1::AdapterChunk>* writer);
  // Resolves the spec's paths against the data roots, in place.
  absl::Status ConfinePaths(JobSpec* spec) const;

  // Constant after construction.
  scheduler::Scheduler* const scheduler_;
  store::Store* const store_;
  const DataRoots data_roots_;
};

}  // namespace attune::api

#endif  // ATTUNE_SERVER_API_ATTUNE_SERVICE_H_
