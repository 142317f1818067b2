#include "server/worker/worker_session.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/worker/worker_protocol.h"

namespace attune::worker {

void WorkerObserver::OnStart(const engine::SpecCheck& setup, int64_t resumed_from_step) {
  v1::WorkerReport report;
  *report.mutable_started() = ToWire(setup, resumed_from_step);
  Send(report);
}

void WorkerObserver::OnStep(const StepMetrics& metrics) {
  v1::WorkerReport report;
  *report.mutable_step() = ToWire(metrics);
  Send(report);
}

void WorkerObserver::OnEval(const EvalMetrics& metrics) {
  v1::WorkerReport report;
  *report.mutable_eval() = ToWire(metrics);
  Send(report);
}

void WorkerObserver::OnCheckpoint(const engine::CheckpointInfo& checkpoint) {
  v1::WorkerReport report;
  *report.mutable_checkpoint() = ToWire(checkpoint);
  Send(report);
}

void WorkerObserver::OnWarning(const std::string& message) {
  v1::WorkerReport report;
  report.set_warning(message);
  Send(report);
}

void WorkerObserver::OnSharedBase(const std::vector<std::string>& job_ids) {
  v1::WorkerReport report;
  for (const std::string& id : job_ids) report.mutable_shared_base()->add_job_ids(id);
  Send(report);
}

bool WorkerObserver::Send(const v1::WorkerReport& report) {
  if (quiet_ && !report.has_finished()) return ok_;
  if (ok_ && !stream_->Write(report)) ok_ = false;
  return ok_;
}

bool OpenAttempt(v1::Supervisor::Stub& stub, v1::Hello hello, AttemptStream* attempt) {
  attempt->stream = stub.Attach(&attempt->context);
  v1::WorkerReport report;
  hello.set_pid(getpid());
  *report.mutable_hello() = std::move(hello);
  v1::SupervisorCommand command;
  if (!attempt->stream->Write(report) || !attempt->stream->Read(&command) ||
      !command.has_assignment()) {
    std::cerr << "attune-worker: no job from attuned: " << attempt->stream->Finish().error_message()
              << std::endl;
    return false;
  }
  attempt->assignment = command.assignment();
  return true;
}

absl::StatusOr<AssignedJob> JobOf(const v1::Assignment& assignment,
                                  const std::string& local_address) {
  absl::StatusOr<JobSpec> spec = JobSpecFromJson(assignment.spec_json());
  if (!spec.ok()) return spec.status();
  if (assignment.devices_size() == 0) {
    return absl::InvalidArgumentError("devices: attuned gave the worker no device");
  }
  const int rank = assignment.rank();
  if (rank < 0 || rank >= assignment.devices_size()) {
    return absl::InvalidArgumentError(absl::StrCat("rank: ", rank, " has no device among the ",
                                                   assignment.devices_size(), " given"));
  }
  AssignedJob job;
  job.spec = spec->train;
  engine::RunOptions& options = job.options;
  options.device = assignment.devices(rank);
  options.parallel.rank = rank;
  options.parallel.world_size = std::max(1, assignment.world_size());
  options.parallel.rendezvous = assignment.rendezvous();
  options.parallel.local_address = local_address;
  options.output_dir = assignment.output_dir();
  options.resume = engine::ResumeMode::kFromLatest;
  options.data_roots.assign(assignment.data_roots().begin(), assignment.data_roots().end());
  std::cerr << "attune-worker: job " << assignment.job_id() << " on " << options.device;
  if (!options.parallel.rendezvous.empty()) {
    std::cerr << ", rank " << rank << " of " << options.parallel.world_size << " (rendezvous "
              << options.parallel.rendezvous << ")";
  }
  std::cerr << std::endl;
  return job;
}

int ReportEnd(AttemptStream& attempt, WorkerObserver& observer,
              const absl::StatusOr<engine::TrainResult>& result, std::thread& reader) {
  v1::WorkerReport end;
  *end.mutable_finished() = ToWire(result);
  const bool reported = observer.Send(end);
  attempt.stream->WritesDone();
  reader.join();
  const grpc::Status status = attempt.stream->Finish();
  if (!reported || !status.ok()) {
    std::cerr << "attune-worker: lost attuned before reporting the end of job "
              << attempt.assignment.job_id() << ": " << status.error_message() << std::endl;
    return 3;
  }
  return 0;
}

}  // namespace attune::worker
