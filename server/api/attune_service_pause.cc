// PauseJob and ResumeJob: the caller must see the job (NOT_FOUND otherwise, as for an unknown
// id), then the scheduler decides (scheduler.h: Pause, Resume).
#include "common/status_macros.h"
#include "server/api/attune_service.h"
#include "server/api/grpc_status.h"
#include "server/api/proto_convert.h"
#include "server/api/request_limits.h"

namespace attune::api {
namespace {

grpc::Status ReplyJob(const absl::StatusOr<store::Job>& job, v1::Job* response) {
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = JobToProto(*job);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status AttuneService::PauseJob(grpc::ServerContext* context,
                                     const v1::PauseJobRequest* request, v1::Job* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status id = CheckJobId(request->job_id()); !id.ok()) return ToGrpcStatus(id);
  absl::StatusOr<store::Job> visible = VisibleJob(*caller, request->job_id());
  if (!visible.ok()) return ToGrpcStatus(visible.status());
  return ReplyJob(scheduler_->Pause(request->job_id()), response);
}

grpc::Status AttuneService::ResumeJob(grpc::ServerContext* context,
                                      const v1::ResumeJobRequest* request, v1::Job* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status id = CheckJobId(request->job_id()); !id.ok()) return ToGrpcStatus(id);
  absl::StatusOr<store::Job> visible = VisibleJob(*caller, request->job_id());
  if (!visible.ok()) return ToGrpcStatus(visible.status());
  return ReplyJob(scheduler_->Resume(request->job_id()), response);
}

}  // namespace attune::api
