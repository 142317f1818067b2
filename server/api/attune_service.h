// The attune.v1.Attune gRPC service: a thin adapter over the Scheduler and the Store.
//
// Each method validates and converts its request (proto -> plain C++ records, paths checked
// against the data roots), delegates to the scheduler or the store, converts the answer back,
// and turns errors into gRPC statuses in one place (ToGrpcStatus). No training or SQL here, and
// no file reading: DownloadAdapter's chunks and hashes come from StreamAdapter (adapter_stream.h).
//
// Every method first authenticates the caller (auth::Authenticator: the `authorization`
// metadata and the peer; UNAUTHENTICATED otherwise). A job belongs to the tenant that created it
// (Job.owner): another tenant gets NOT_FOUND for it, with the same message as for an id that
// does not exist, and sees none of it in ListJobs; an admin sees every tenant's jobs. Request ids
// are per tenant. A tenant with its own data roots (tokens_file.h) may name only files inside
// them, and inside the server's roots.
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
#include "server/auth/authenticator.h"
#include "server/scheduler/scheduler.h"
#include "server/store/store.h"

namespace attune::api {

class AttuneService final : public v1::Attune::Service {
 public:
  // `scheduler`, `store` and `authenticator` are not owned and must outlive the service (and the
  // gRPC server that runs it). Thread-safe: every method may run concurrently.
  AttuneService(scheduler::Scheduler* scheduler, store::Store* store, DataRoots data_roots,
                const auth::Authenticator* authenticator);

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
  grpc::Status ListCheckpoints(grpc::ServerContext* context,
                               const v1::ListCheckpointsRequest* request,
                               v1::ListCheckpointsResponse* response) override;
  grpc::Status DeleteJob(grpc::ServerContext* context, const v1::DeleteJobRequest* request,
                         v1::DeleteJobResponse* response) override;
  // attune_service_pause.cc
  grpc::Status PauseJob(grpc::ServerContext* context, const v1::PauseJobRequest* request,
                        v1::Job* response) override;
  grpc::Status ResumeJob(grpc::ServerContext* context, const v1::ResumeJobRequest* request,
                         v1::Job* response) override;

 private:
  // The bodies, returning absl::Status; the overrides above only convert.
  absl::StatusOr<v1::Job> DoCreateJob(const auth::Caller& caller,
                                      const v1::CreateJobRequest& request);
  absl::StatusOr<v1::Job> DoGetJob(const auth::Caller& caller, const v1::GetJobRequest& request);
  absl::StatusOr<v1::Job> DoCancelJob(const auth::Caller& caller,
                                      const v1::CancelJobRequest& request);
  absl::StatusOr<v1::ListJobsResponse> DoListJobs(const auth::Caller& caller,
                                                  const v1::ListJobsRequest& request);
  absl::Status DoWatchJob(grpc::ServerContext* context, const auth::Caller& caller,
                          const v1::WatchJobRequest& request,
                          grpc::ServerWriter<v1::JobEvent>* writer);
  absl::Status DoDownloadAdapter(grpc::ServerContext* context, const auth::Caller& caller,
                                 const v1::DownloadAdapterRequest& request,
                                 grpc::ServerWriter<v1::AdapterChunk>* writer);
  absl::StatusOr<v1::ListCheckpointsResponse> DoListCheckpoints(
      const auth::Caller& caller, const v1::ListCheckpointsRequest& request);
  absl::StatusOr<v1::DeleteJobResponse> DoDeleteJob(const auth::Caller& caller,
                                                    const v1::DeleteJobRequest& request);
  // The caller of this RPC; UNAUTHENTICATED (auth::Authenticator::Authenticate).
  absl::StatusOr<auth::Caller> Authenticate(const grpc::ServerContext& context) const;
  // The job `id` when `caller` may see it; NOT_FOUND, worded as for an unknown id, otherwise.
  absl::StatusOr<store::Job> VisibleJob(const auth::Caller& caller, const std::string& id);
  // Resolves the spec's paths against the caller's data roots and the server's, in place.
  absl::Status ConfinePaths(const auth::Caller& caller, JobSpec* spec) const;

  // Constant after construction.
  scheduler::Scheduler* const scheduler_;
  store::Store* const store_;
  const DataRoots data_roots_;
  const auth::Authenticator* const authenticator_;
};

}  // namespace attune::api

#endif  // ATTUNE_SERVER_API_ATTUNE_SERVICE_H_
