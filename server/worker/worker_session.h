// What attune-worker does for each attempt it trains, shared by the one-job worker
// (worker_main.cc) and a shared-base group's worker (group_worker.h): the attempt's stream to
// attuned, its reports, and the job its Assignment names.
#ifndef ATTUNE_SERVER_WORKER_WORKER_SESSION_H_
#define ATTUNE_SERVER_WORKER_WORKER_SESSION_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "attune/worker/v1/worker.grpc.pb.h"
#include "common/job_spec.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/trainer.h"

namespace attune::worker {

using WorkerClientStream = grpc::ClientReaderWriter<v1::WorkerReport, v1::SupervisorCommand>;

// Reports to attuned from the training thread; Stop arrives on the stream's reader thread.
class WorkerObserver : public engine::TrainingObserver {
 public:
  // `quiet`: report nothing but the end (a data-parallel rank other than 0; rank 0 reports).
  WorkerObserver(WorkerClientStream* stream, const std::atomic<bool>* stop, bool quiet)
      : stream_(stream), stop_(stop), quiet_(quiet) {}

  void OnStart(const engine::SpecCheck& setup, int64_t resumed_from_step) override;
  void OnStep(const StepMetrics& metrics) override;
  void OnEval(const EvalMetrics& metrics) override;
  void OnCheckpoint(const engine::CheckpointInfo& checkpoint) override;
  void OnWarning(const std::string& message) override;
  void OnSharedBase(const std::vector<std::string>& job_ids) override;
  bool StopRequested() override { return stop_->load(); }

  // False once a write has failed (attuned is gone). Quiet workers send Finished only.
  bool Send(const v1::WorkerReport& report);

 private:
  WorkerClientStream* const stream_;
  const std::atomic<bool>* const stop_;
  const bool quiet_;
  bool ok_ = true;  // training thread only
};

// An attempt's stream: Attach, then Hello (with this process's pid); the Assignment attuned
// answers with, or false (with why on stderr) when none came.
struct AttemptStream {
  grpc::ClientContext context;
  std::unique_ptr<WorkerClientStream> stream;
  v1::Assignment assignment;
};
bool OpenAttempt(v1::Supervisor::Stub& stub, v1::Hello hello, AttemptStream* attempt);

// The job an Assignment names, and how to train it: its spec, and RunOptions for its rank's
// device, output directory (resumed from its newest checkpoint), data roots and rendezvous.
// INVALID_ARGUMENT for a spec that does not parse or a rank without a device. Says on stderr
// (the worker's log) which job it trains where.
struct AssignedJob {
  TrainSpec spec;
  engine::RunOptions options;
};
absl::StatusOr<AssignedJob> JobOf(const v1::Assignment& assignment,
                                  const std::string& local_address);

// Sends the end (Finished with `result`) and WritesDone, joins `reader` (the thread reading the
// stream's commands, which ends with the stream) and finishes the stream. 0 when the end was
// reported, else 3 (attuned was lost first), as attune-worker exits.
int ReportEnd(AttemptStream& attempt, WorkerObserver& observer,
              const absl::StatusOr<engine::TrainResult>& result, std::thread& reader);

}  // namespace attune::worker

#endif  // ATTUNE_SERVER_WORKER_WORKER_SESSION_H_
