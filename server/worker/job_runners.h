// Which JobRunner attuned trains jobs with (its --job-processes flag): WorkerJobRunner, one
// attune-worker process per attempt (supervisor.h), or EngineJobRunner on attuned's own
// threads.
#ifndef ATTUNE_SERVER_WORKER_JOB_RUNNERS_H_
#define ATTUNE_SERVER_WORKER_JOB_RUNNERS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "server/scheduler/job_runner.h"
#include "server/worker/supervisor.h"

namespace attune::worker {

struct JobRunnerOptions {
  bool job_processes = true;            // false: EngineJobRunner on attuned's threads
  std::string worker_binary;            // empty = DefaultWorkerBinary()
  std::string data_dir;                 // the workers' socket is DATA_DIR/run/workers.sock
  std::vector<std::string> data_roots;  // resolved (api::DataRoots::roots())
  bool one_rank_collectives = false;    // WorkerOptions::one_rank_collectives
  // attuned --worker-listen HOST:PORT (workers on other machines; empty = none) and the file
  // whose first line is the token they must send (--worker-token-file).
  std::string worker_listen;
  std::string worker_token_file;
  // attuned --share-base: on (every slot), gpus (GPU slots), off. Compatible LoRA jobs on a slot
  // that shares train as one shared-base group (engine/training_group.h), on attuned's threads
  // or in one worker process (group_workers.h).
  std::string share_base = "gpus";
};

// Whether jobs on a device share their base under `mode` (on, gpus, off); null for off.
// INVALID_ARGUMENT naming --share-base for another mode.
absl::StatusOr<std::function<bool(const std::string& device)>> SharesBase(const std::string& mode);

// SchedulerOptions::shares_device for `options`: SharesBase, and never a remote-cpu slot (it
// trains one job); nullptr with --share-base=off.
std::function<bool(const std::string& device)> ShareDeviceRule(const JobRunnerOptions& options);

// SchedulerOptions::share_base for `options`: engine::GroupIncompatibility of the two jobs on the
// device; nullptr with --share-base=off.
std::function<std::string(const TrainSpec&, const TrainSpec&, const std::string&)> ShareBaseRule(
    const JobRunnerOptions& options);

// The runner. With job processes, `supervisor` (which must outlive the runner) is served on the
// workers' socket (and at options.worker_listen, then bound as *worker_listen_bound) into
// *workers; errors are ServeSupervisor's, or INVALID_ARGUMENT for --worker-listen without a
// token.
absl::StatusOr<std::unique_ptr<scheduler::JobRunner>> MakeJobRunner(
    const JobRunnerOptions& options, Supervisor* supervisor, std::unique_ptr<grpc::Server>* workers,
    std::string* worker_listen_bound = nullptr);

}  // namespace attune::worker

#endif  // ATTUNE_SERVER_WORKER_JOB_RUNNERS_H_
