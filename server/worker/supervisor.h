// Jobs in worker processes: attuned's side of the worker protocol
// (proto/attune/worker/v1/worker.proto).
//
// `WorkerJobRunner` is the scheduler's JobRunner when jobs run in processes: for each attempt
// it registers the job with the `Supervisor` (the protocol's gRPC service, which attuned serves
// on a Unix socket in its data directory), starts an `attune-worker` for it, relays the
// worker's reports to the job's observer, sends Stop when the scheduler asks the job to stop,
// and returns the worker's result once it has exited. A worker that exits without a result (a
// signal, a crash, an out-of-memory kill) is UNAVAILABLE, a crash the scheduler retries from
// the last checkpoint (JobSpec max_retries), with the exit and the last lines of its log
// (jobs/<id>/worker.log) as the reason. Workers get SIGKILL when attuned dies.
//
// A job given N devices (JobSpec ranks, data-parallel training) is N workers, one per rank, each
// with its own attempt id, meeting at a loopback rendezvous (c10d TCPStore, hosted by rank 0);
// rank 0 reports for the job (the others' logs are worker-rankR.log). When one rank's worker
// ends without a successful end, the others are killed at once (they would wait for it), and the
// attempt fails with the first failed rank's reason.
//
// With WorkerOptions::shares_base (attuned --share-base), a job that can share its base trains
// in a shared-base group's worker instead (group_workers.h).
#ifndef ATTUNE_SERVER_WORKER_SUPERVISOR_H_
#define ATTUNE_SERVER_WORKER_SUPERVISOR_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "attune/worker/v1/worker.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/scheduler/job_runner.h"

namespace attune::worker {

class Attempt;       // attempt.h: one attempt's assignment, stream and reports
class GroupWorkers;  // group_workers.h: shared-base groups' workers
struct RankWorker;   // supervisor.cc: one rank's attempt and worker process

// The Supervisor service. Thread-safe: gRPC threads serve Attach while job threads Open and
// Close attempts.
class Supervisor final : public v1::Supervisor::Service {
 public:
  // A worker's stream: Hello, then its reports until Finished. NOT_FOUND for an attempt id that
  // is not open, ALREADY_EXISTS for a second stream of the same attempt.
  grpc::Status Attach(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::SupervisorCommand, v1::WorkerReport>* stream) override;

  // The token remote workers send in Hello (attuned --worker-token-file); empty = no remote
  // worker is accepted. Call before serving.
  void set_join_token(std::string token) { join_token_ = std::move(token); }

  // Registers an attempt under a new random id (128 bits, hex) whose reports go to `observer`.
  // A `remote` attempt waits for a worker that joins with the token instead of its id.
  std::shared_ptr<Attempt> Open(v1::Assignment assignment, engine::TrainingObserver* observer,
                                bool remote = false);
  // Forgets the attempt: no report reaches its observer after this returns.
  void Close(const std::shared_ptr<Attempt>& attempt);

 private:
  // The attempt a Hello names: by id, or for a remote worker with the token, the first remote
  // attempt that waits (for up to a few seconds).
  grpc::Status FindAttempt(const v1::Hello& hello, std::shared_ptr<Attempt>* attempt);

  std::string join_token_;  // constant once serving
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Attempt>> attempts_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<Attempt>> remote_waiting_ ABSL_GUARDED_BY(mu_);
};

struct WorkerOptions {
  std::string worker_binary;            // the attune-worker executable
  std::string supervisor_address;       // where workers reach the Supervisor, e.g. "unix:/d/run/w"
  std::vector<std::string> data_roots;  // as EngineJobRunner's
  // A job of one rank gets a rendezvous too, so its worker forms a one-member process group
  // (attuned --one-rank-collectives: checks the collectives' path on one device).
  bool one_rank_collectives = false;
  // A worker that has not attached by then is killed (its attempt fails as a crash).
  absl::Duration attach_timeout = absl::Seconds(60);
  absl::Duration poll_interval = absl::Milliseconds(20);  // of the worker's exit and of stops
  // attuned --worker-listen's host: where a job with a remote rank has its rendezvous, so that
  // workers on other machines reach rank 0; empty = no remote workers.
  std::string remote_host;
  // attuned --share-base: whether a job on this device may share its base with others
  // (group_workers.h); null = none does.
  std::function<bool(const std::string& device)> shares_base;
};

class WorkerJobRunner : public scheduler::JobRunner {
 public:
  // `supervisor` must outlive the runner and be served at options.supervisor_address.
  WorkerJobRunner(WorkerOptions options, Supervisor* supervisor);
  ~WorkerJobRunner() override;

  // engine::CheckSpec, in attuned: it reads headers and data, and loads no weights.
  absl::StatusOr<engine::SpecCheck> Check(const TrainSpec& spec) override;
  // One attempt in one attune-worker, as the file comment says.
  absl::StatusOr<engine::TrainResult> Run(const store::Job& job,
                                          const std::vector<std::string>& devices,
                                          const std::string& output_dir,
                                          engine::TrainingObserver* observer) override;

 private:
  // Opens an attempt and starts a worker for each of `ranks` (one per device; ranks above 0
  // report to `other_ranks`, which discards their progress), with a shared rendezvous when
  // there are several.
  absl::Status StartRanks(const store::Job& job, const std::vector<std::string>& devices,
                          const std::string& output_dir, engine::TrainingObserver* observer,
                          engine::TrainingObserver* other_ranks, std::vector<RankWorker>& ranks);

  const WorkerOptions options_;
  Supervisor* const supervisor_;
  const std::unique_ptr<GroupWorkers> groups_;  // null without options_.shares_base
};

// Serves `supervisor` on a Unix socket at `socket_path`, whose directory is created with mode
// 0700 (only attuned's user can connect); sets *address to what workers dial ("unix:PATH").
// With a `tcp_address` (HOST:PORT, port 0 = any), also there, for workers on other machines;
// *tcp_bound is then HOST:PORT as bound. INVALID_ARGUMENT when the path is longer than a socket
// address holds, UNAVAILABLE when it cannot listen.
absl::StatusOr<std::unique_ptr<grpc::Server>> ServeSupervisor(const std::string& socket_path,
                                                              Supervisor* supervisor,
                                                              std::string* address,
                                                              const std::string& tcp_address = "",
                                                              std::string* tcp_bound = nullptr);

// The Assignment of `job` on `devices` (rank 0 of one; set rank, world_size and rendezvous for
// more), checkpointing under `output_dir`, reading inside `data_roots`.
v1::Assignment MakeAssignment(const store::Job& job, const std::vector<std::string>& devices,
                              const std::string& output_dir,
                              const std::vector<std::string>& data_roots);

// attune-worker beside the running executable (/proc/self/exe).
std::string DefaultWorkerBinary();

}  // namespace attune::worker

#endif  // ATTUNE_SERVER_WORKER_SUPERVISOR_H_
