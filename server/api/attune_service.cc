#include "server/api/attune_service.h"

#include <fstream>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "server/api/adapter_archive.h"
#include "server/api/grpc_status.h"
#include "server/api/proto_convert.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace attune::api {
namespace {

constexpr size_t kChunkBytes = 256 * 1024;
constexpr int kMaxRequestIdLength = 128;
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

absl::Status RequireJobId(const std::string& job_id) {
  if (job_id.empty()) return absl::InvalidArgumentError("job_id: required");
  return absl::OkStatus();
}

}  // namespace

AttuneService::AttuneService(scheduler::Scheduler* scheduler, store::Store* store,
                             DataRoots data_roots)
    : scheduler_(scheduler), store_(store), data_roots_(std::move(data_roots)) {}

absl::Status AttuneService::ConfinePaths(JobSpec* spec) const {
  TrainSpec& t = spec->train;
  ASSIGN_OR_RETURN(t.model_dir, data_roots_.Resolve("model", t.model_dir, PathKind::kDirectory));
  ASSIGN_OR_RETURN(t.train_path, data_roots_.Resolve("train", t.train_path, PathKind::kFile));
  if (!t.validation_path.empty()) {
    ASSIGN_OR_RETURN(t.validation_path,
                     data_roots_.Resolve("validation", t.validation_path, PathKind::kFile));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> AttuneService::DoCreateJob(const v1::CreateJobRequest& request) {
  if (request.request_id().size() > kMaxRequestIdLength) {
    return absl::InvalidArgumentError(absl::StrCat("request_id: ", request.request_id().size(),
                                                   " characters; at most ",
                                                   kMaxRequestIdLength, " allowed"));
  }
  ASSIGN_OR_RETURN(JobSpec spec, JobSpecFromProto(request.spec()));
  // Field ranges first, so that "lora.rank: 0 ..." wins over a file problem; then the files.
  RETURN_IF_ERROR(ValidateJobSpecFields(spec));
  RETURN_IF_ERROR(ConfinePaths(&spec));
  ASSIGN_OR_RETURN(store::Job job,
                   scheduler_->Submit(spec, request.request_id(), /*owner=*/""));
  return JobToProto(job);
}

absl::StatusOr<v1::ListJobsResponse> AttuneService::DoListJobs(const v1::ListJobsRequest& request) {
  store::ListJobsQuery query;
  if (request.state() != v1::JOB_STATE_UNSPECIFIED) {
    ASSIGN_OR_RETURN(query.state, JobStateFromProto(request.state()));
  }
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: ", request.page_size(),
                                                   " is out of range; expected 0..",
                                                   kMaxPageSize, " (0 = ", kDefaultPageSize, ")"));
  }
  query.page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  query.page_token = request.page_token();
  ASSIGN_OR_RETURN(store::JobPage page, scheduler_->List(query));
  v1::ListJobsResponse response;
  for (const store::Job& job : page.jobs) *response.add_jobs() = JobToProto(job);
  response.set_next_page_token(page.next_page_token);
  return response;
}

absl::Status AttuneService::DoWatchJob(grpc::ServerContext* context,
                                       const v1::WatchJobRequest& request,
                                       grpc::ServerWriter<v1::JobEvent>* writer) {
  RETURN_IF_ERROR(RequireJobId(request.job_id()));
  if (request.from_sequence() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("from_sequence: ", request.from_sequence(), " must be >= 0"));
  }
  int64_t after = request.from_sequence();
  while (!context->IsCancelled()) {
    ASSIGN_OR_RETURN(std::vector<store::JobEvent> events,
                     scheduler_->WaitForEvents(request.job_id(), after, /*max_events=*/256,
                                               absl::Seconds(1)));
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
                                              const v1::DownloadAdapterRequest& request,
                                              grpc::ServerWriter<v1::AdapterChunk>* writer) {
  RETURN_IF_ERROR(RequireJobId(request.job_id()));
  RETURN_IF_ERROR(scheduler_->Get(request.job_id()).status());  // NOT_FOUND for unknown jobs
  ASSIGN_OR_RETURN(std::vector<store::CheckpointRecord> checkpoints,
                   store_->ListCheckpoints(request.job_id()));
  ASSIGN_OR_RETURN(store::CheckpointRecord checkpoint,
                   SelectCheckpoint(checkpoints, request.checkpoint()));
  ASSIGN_OR_RETURN(std::vector<ArchiveFile> files,
                   ListArchiveFiles(checkpoint.dir, request.include_resume_state()));
  int64_t total = files.empty() ? 0 : files.back().offset + files.back().size;
  if (request.offset() < 0 || request.offset() > total) {
    return absl::InvalidArgumentError(absl::StrCat("offset: ", request.offset(),
                                                   " is out of range; the archive has ", total,
                                                   " bytes"));
  }

  auto send = [&](const v1::AdapterChunk& chunk) -> absl::Status {
    if (context->IsCancelled() || !writer->Write(chunk)) {
      return absl::CancelledError("DownloadAdapter: the client went away");
    }
    return absl::OkStatus();
  };
  v1::AdapterChunk info;
  info.mutable_info()->set_job_id(request.job_id());
  info.mutable_info()->set_step(checkpoint.step);
  info.mutable_info()->set_total_size(total);
  info.mutable_info()->set_file_count(static_cast<int>(files.size()));
  RETURN_IF_ERROR(send(info));

  Sha256 archive_hash;
  std::vector<char> buffer(kChunkBytes);
  for (const ArchiveFile& file : files) {
    v1::AdapterChunk header;
    header.mutable_file()->set_path(file.relative_path);
    header.mutable_file()->set_size(file.size);
    header.mutable_file()->set_offset(file.offset);
    RETURN_IF_ERROR(send(header));
    std::ifstream in(file.absolute_path, std::ios::binary);
    if (!in) {
      return absl::NotFoundError(absl::StrCat("checkpoint: cannot read ", file.absolute_path));
    }
    // Every byte is hashed (the trailer covers the whole archive); only bytes at or after the
    // request's offset are sent.
    Sha256 file_hash;
    int64_t position = file.offset;
    int64_t read_total = 0;
    while (read_total < file.size) {
      in.read(buffer.data(), std::min<int64_t>(buffer.size(), file.size - read_total));
      std::streamsize n = in.gcount();
      if (n <= 0) {
        return absl::DataLossError(absl::StrCat("checkpoint: ", file.absolute_path,
                                                " is shorter than it was a moment ago"));
      }
      archive_hash.Update(buffer.data(), n);
      file_hash.Update(buffer.data(), n);
      int64_t skip = std::max<int64_t>(0, request.offset() - position);
      if (skip < n) {
        v1::AdapterChunk data;
        data.set_data(buffer.data() + skip, n - skip);
        RETURN_IF_ERROR(send(data));
      }
      position += n;
      read_total += n;
    }
    if (file.relative_path == "adapter_model.safetensors" && !checkpoint.sha256.empty()) {
      ASSIGN_OR_RETURN(std::string actual, file_hash.HexDigest());
      if (actual != checkpoint.sha256) {
        return absl::DataLossError(absl::StrCat(
            "checkpoint: step ", checkpoint.step, " adapter_model.safetensors is corrupt on the "
            "server (sha256 ", actual, ", recorded ", checkpoint.sha256, ")"));
      }
    }
  }
  v1::AdapterChunk trailer;
  ASSIGN_OR_RETURN(std::string archive_sha256, archive_hash.HexDigest());
  trailer.mutable_trailer()->set_sha256(archive_sha256);
  return send(trailer);
}

grpc::Status AttuneService::CreateJob(grpc::ServerContext*, const v1::CreateJobRequest* request,
                                      v1::Job* response) {
  absl::StatusOr<v1::Job> job = DoCreateJob(*request);
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = *std::move(job);
  return grpc::Status::OK;
}

grpc::Status AttuneService::GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                                   v1::Job* response) {
  absl::Status status = RequireJobId(request->job_id());
  if (!status.ok()) return ToGrpcStatus(status);
  absl::StatusOr<store::Job> job = scheduler_->Get(request->job_id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = JobToProto(*job);
  return grpc::Status::OK;
}

grpc::Status AttuneService::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) {
  absl::StatusOr<v1::ListJobsResponse> page = DoListJobs(*request);
  if (!page.ok()) return ToGrpcStatus(page.status());
  *response = *std::move(page);
  return grpc::Status::OK;
}

grpc::Status AttuneService::CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* request,
                                      v1::Job* response) {
  absl::Status status = RequireJobId(request->job_id());
  if (!status.ok()) return ToGrpcStatus(status);
  absl::StatusOr<store::Job> job = scheduler_->Cancel(request->job_id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = JobToProto(*job);
  return grpc::Status::OK;
}

grpc::Status AttuneService::WatchJob(grpc::ServerContext* context,
                                     const v1::WatchJobRequest* request,
                                     grpc::ServerWriter<v1::JobEvent>* writer) {
  return ToGrpcStatus(DoWatchJob(context, *request, writer));
}

grpc::Status AttuneService::DownloadAdapter(grpc::ServerContext* context,
                                            const v1::DownloadAdapterRequest* request,
                                            grpc::ServerWriter<v1::AdapterChunk>* writer) {
  return ToGrpcStatus(DoDownloadAdapter(context, *request, writer));
}

}  // namespace attune::api
