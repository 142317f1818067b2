#include "server/api/attune_service.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "server/api/adapter_archive.h"
#include "server/api/adapter_stream.h"
#include "server/api/checkpoint_list.h"
#include "server/api/grpc_status.h"
#include "server/api/proto_convert.h"
#include "server/api/request_limits.h"

namespace attune::api {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
// A ListJobs page stops growing past this many bytes of jobs (gRPC refuses messages over 4 MB).
constexpr size_t kMaxListJobsBytes = size_t{1} << 20;

// How many of `jobs`, from the first, fit in kMaxListJobsBytes (at least one).
int JobsThatFit(const std::vector<store::Job>& jobs) {
  size_t bytes = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    bytes += JobToProto(jobs[i]).ByteSizeLong();
    if (bytes > kMaxListJobsBytes && i > 0) return static_cast<int>(i);
  }
  return static_cast<int>(jobs.size());
}

// RESOURCE_EXHAUSTED naming max_dataset_bytes when the job's data files together are larger than
// the caller's tenant may use.
absl::Status CheckDatasetQuota(const auth::Caller& caller, const TrainSpec& train) {
  const int64_t limit = caller.settings.quota.max_dataset_bytes;
  if (limit <= 0) return absl::OkStatus();
  std::error_code ec;
  int64_t bytes = static_cast<int64_t>(std::filesystem::file_size(train.train_path, ec));
  if (!train.validation_path.empty() && !ec) {
    bytes += static_cast<int64_t>(std::filesystem::file_size(train.validation_path, ec));
  }
  if (ec) return absl::InvalidArgumentError(absl::StrCat("train: cannot size: ", ec.message()));
  if (bytes <= limit) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat("max_dataset_bytes: train + validation are ",
                                                   bytes, " bytes; tenant '", caller.tenant,
                                                   "' may use at most ", limit));
}

// The one place a unary method's result becomes its gRPC answer.
template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

AttuneService::AttuneService(scheduler::Scheduler* scheduler, store::Store* store,
                             DataRoots data_roots, const auth::Authenticator* authenticator)
    : scheduler_(scheduler),
      store_(store),
      data_roots_(std::move(data_roots)),
      authenticator_(authenticator) {}

absl::StatusOr<auth::Caller> AttuneService::Authenticate(const grpc::ServerContext& context) const {
  const auto& metadata = context.client_metadata();
  const auto header = metadata.find("authorization");
  const absl::string_view authorization =
      header == metadata.end() ? absl::string_view()
                               : absl::string_view(header->second.data(), header->second.size());
  return authenticator_->Authenticate(authorization, context.peer());
}

absl::StatusOr<store::Job> AttuneService::VisibleJob(const auth::Caller& caller,
                                                     const std::string& id) {
  ASSIGN_OR_RETURN(store::Job job, scheduler_->Get(id));
  // The store's own words for an unknown id, so that the answer says nothing about other tenants.
  if (!caller.CanSee(job.owner))
    return absl::NotFoundError(absl::StrCat("job '", id, "' not found"));
  return job;
}

absl::Status AttuneService::ConfinePaths(const auth::Caller& caller, JobSpec* spec) const {
  std::optional<DataRoots> tenant_roots;
  if (!caller.settings.data_roots.empty()) {
    ASSIGN_OR_RETURN(tenant_roots, DataRoots::Create(caller.settings.data_roots));
  }
  // The tenant's roots first (a path outside them is refused naming them), then the server's,
  // which the engine enforces again each time it opens the file.
  const auto resolve = [&](const char* field, const std::string& path,
                           PathKind kind) -> absl::StatusOr<std::string> {
    if (tenant_roots.has_value())
      RETURN_IF_ERROR(tenant_roots->Resolve(field, path, kind).status());
    return data_roots_.Resolve(field, path, kind);
  };
  TrainSpec& t = spec->train;
  ASSIGN_OR_RETURN(t.model_dir, resolve("model", t.model_dir, PathKind::kDirectory));
  ASSIGN_OR_RETURN(t.train_path, resolve("train", t.train_path, PathKind::kFile));
  if (!t.validation_path.empty()) {
    ASSIGN_OR_RETURN(t.validation_path, resolve("validation", t.validation_path, PathKind::kFile));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> AttuneService::DoCreateJob(const auth::Caller& caller,
                                                   const v1::CreateJobRequest& request) {
  RETURN_IF_ERROR(CheckCreateJobRequestSizes(request));  // before anything is built from it
  ASSIGN_OR_RETURN(JobSpec spec, JobSpecFromProto(request.spec()));
  // Field ranges first, so that "lora.rank: 0 ..." wins over a file problem; then the files.
  RETURN_IF_ERROR(ValidateJobSpecFields(spec));
  RETURN_IF_ERROR(ConfinePaths(caller, &spec));
  RETURN_IF_ERROR(CheckDatasetQuota(caller, spec.train));
  if (request.validate_only()) {
    ApplyJobSpecDefaults(&spec);
    store::Job would_be;
    would_be.spec = spec;
    would_be.request_id = request.request_id();
    would_be.owner = caller.tenant;
    return JobToProto(would_be);
  }
  ASSIGN_OR_RETURN(store::Job job, scheduler_->Submit(spec, request.request_id(), caller.tenant));
  return JobToProto(job);
}

absl::StatusOr<v1::ListJobsResponse> AttuneService::DoListJobs(const auth::Caller& caller,
                                                               const v1::ListJobsRequest& request) {
  store::ListJobsQuery query;
  if (!caller.admin) query.owner = caller.tenant;
  if (request.state() != v1::JOB_STATE_UNSPECIFIED) {
    ASSIGN_OR_RETURN(query.state, JobStateFromProto(request.state()));
  }
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: ", request.page_size(),
                                                   " is out of range; expected 0..", kMaxPageSize,
                                                   " (0 = ", kDefaultPageSize, ")"));
  }
  query.page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  RETURN_IF_ERROR(CheckPageToken(request.page_token()));
  query.page_token = request.page_token();
  ASSIGN_OR_RETURN(query.labels, ParseLabelSelector(request.label_selector()));
  ASSIGN_OR_RETURN(store::JobPage page, scheduler_->List(query));
  if (const int fit = JobsThatFit(page.jobs); fit < static_cast<int>(page.jobs.size())) {
    // Too many bytes: ask again for only the jobs that fit, so that the store's token resumes
    // right after them.
    query.page_size = fit;
    ASSIGN_OR_RETURN(page, scheduler_->List(query));
  }
  v1::ListJobsResponse response;
  for (const store::Job& job : page.jobs) *response.add_jobs() = JobToProto(job);
  response.set_next_page_token(page.next_page_token);
  return response;
}

absl::Status AttuneService::DoWatchJob(grpc::ServerContext* context, const auth::Caller& caller,
                                       const v1::WatchJobRequest& request,
                                       grpc::ServerWriter<v1::JobEvent>* writer) {
  RETURN_IF_ERROR(CheckJobId(request.job_id()));
  RETURN_IF_ERROR(VisibleJob(caller, request.job_id()).status());
  if (request.from_sequence() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("from_sequence: ", request.from_sequence(), " must be >= 0"));
  }
  int64_t after = request.from_sequence();
  while (!context->IsCancelled()) {
    ASSIGN_OR_RETURN(
        std::vector<store::JobEvent> events,
        scheduler_->WaitForEvents(request.job_id(), after, /*max_events=*/256, absl::Seconds(1)));
    if (events.empty()) {
      // Either the wait timed out, or the job is over and every event has been read.
      ASSIGN_OR_RETURN(store::Job job, scheduler_->Get(request.job_id()));
      if (!store::IsTerminal(job.state)) continue;
      ASSIGN_OR_RETURN(int64_t last, store_->LastEventSequence(request.job_id()));
      if (after >= last) return absl::OkStatus();
      continue;
    }
    for (const store::JobEvent& event : events) {
      if (!writer->Write(JobEventToProto(event))) {
        return absl::CancelledError("WatchJob: the client went away");
      }
      after = event.sequence;
      if (event.type == store::EventType::kStateChanged && store::IsTerminal(event.state)) {
        return absl::OkStatus();
      }
    }
  }
  return absl::CancelledError("WatchJob: cancelled by the client");
}

absl::Status AttuneService::DoDownloadAdapter(grpc::ServerContext* context,
                                              const auth::Caller& caller,
                                              const v1::DownloadAdapterRequest& request,
                                              grpc::ServerWriter<v1::AdapterChunk>* writer) {
  RETURN_IF_ERROR(CheckJobId(request.job_id()));
  RETURN_IF_ERROR(VisibleJob(caller, request.job_id()).status());  // NOT_FOUND for unknown jobs
  ASSIGN_OR_RETURN(std::vector<store::CheckpointRecord> checkpoints,
                   store_->ListCheckpoints(request.job_id()));
  ASSIGN_OR_RETURN(store::CheckpointRecord checkpoint,
                   SelectCheckpoint(checkpoints, request.checkpoint()));
  ASSIGN_OR_RETURN(std::vector<ArchiveFile> files,
                   ListArchiveFiles(checkpoint.dir, request.include_resume_state()));
  return StreamAdapter(request.job_id(), checkpoint, files, request.offset(),
                       [&](const v1::AdapterChunk& chunk) -> absl::Status {
                         if (context->IsCancelled() || !writer->Write(chunk)) {
                           return absl::CancelledError("DownloadAdapter: the client went away");
                         }
                         return absl::OkStatus();
                       });
}

absl::StatusOr<v1::Job> AttuneService::DoGetJob(const auth::Caller& caller,
                                                const v1::GetJobRequest& request) {
  RETURN_IF_ERROR(CheckJobId(request.job_id()));
  ASSIGN_OR_RETURN(store::Job job, VisibleJob(caller, request.job_id()));
  v1::Job proto = JobToProto(job);
  ASSIGN_OR_RETURN(int64_t artifact_bytes, scheduler_->ArtifactBytes(job.id));
  proto.set_artifact_bytes(artifact_bytes);
  return proto;
}

absl::StatusOr<v1::ListCheckpointsResponse> AttuneService::DoListCheckpoints(
    const auth::Caller& caller, const v1::ListCheckpointsRequest& request) {
  RETURN_IF_ERROR(CheckJobId(request.job_id()));
  ASSIGN_OR_RETURN(store::Job job, VisibleJob(caller, request.job_id()));
  ASSIGN_OR_RETURN(std::vector<store::CheckpointRecord> checkpoints,
                   store_->ListCheckpoints(job.id));
  ASSIGN_OR_RETURN(std::vector<store::JobEvent> step_events, store_->CheckpointStepEvents(job.id));
  return ListCheckpointsResponseFor(job, checkpoints, step_events);
}

absl::StatusOr<v1::DeleteJobResponse> AttuneService::DoDeleteJob(
    const auth::Caller& caller, const v1::DeleteJobRequest& request) {
  RETURN_IF_ERROR(CheckJobId(request.job_id()));
  RETURN_IF_ERROR(VisibleJob(caller, request.job_id()).status());
  ASSIGN_OR_RETURN(int64_t freed_bytes, scheduler_->Delete(request.job_id()));
  v1::DeleteJobResponse response;
  response.set_job_id(request.job_id());
  response.set_freed_bytes(freed_bytes);
  return response;
}

absl::StatusOr<v1::Job> AttuneService::DoCancelJob(const auth::Caller& caller,
                                                   const v1::CancelJobRequest& request) {
  RETURN_IF_ERROR(CheckJobId(request.job_id()));
  RETURN_IF_ERROR(VisibleJob(caller, request.job_id()).status());
  ASSIGN_OR_RETURN(store::Job job, scheduler_->Cancel(request.job_id()));
  return JobToProto(job);
}

grpc::Status AttuneService::CreateJob(grpc::ServerContext* context,
                                      const v1::CreateJobRequest* request, v1::Job* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(DoCreateJob(*caller, *request), response);
}

grpc::Status AttuneService::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                   v1::Job* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(DoGetJob(*caller, *request), response);
}

grpc::Status AttuneService::ListJobs(grpc::ServerContext* context,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(DoListJobs(*caller, *request), response);
}

grpc::Status AttuneService::CancelJob(grpc::ServerContext* context,
                                      const v1::CancelJobRequest* request, v1::Job* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(DoCancelJob(*caller, *request), response);
}

grpc::Status AttuneService::WatchJob(grpc::ServerContext* context,
                                     const v1::WatchJobRequest* request,
                                     grpc::ServerWriter<v1::JobEvent>* writer) {
  absl::StatusOr<auth::Caller> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(DoWatchJob(context, *caller, *request, writer));
}

grpc::Status AttuneService::DownloadAdapter(grpc::ServerContext* context,
                                            const v1::DownloadAdapterRequest* request,
                                            grpc::ServerWriter<v1::AdapterChunk>* writer) {
  absl::StatusOr<auth::Caller> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(DoDownloadAdapter(context, *caller, *request, writer));
}

grpc::Status AttuneService::ListCheckpoints(grpc::ServerContext* context,
                                            const v1::ListCheckpointsRequest* request,
                                            v1::ListCheckpointsResponse* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(DoListCheckpoints(*caller, *request), response);
}

grpc::Status AttuneService::DeleteJob(grpc::ServerContext* context,
                                      const v1::DeleteJobRequest* request,
                                      v1::DeleteJobResponse* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(DoDeleteJob(*caller, *request), response);
}

}  // namespace attune::api
