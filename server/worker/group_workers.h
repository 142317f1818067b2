// Shared-base groups in worker processes (attuned --share-base with --job-processes on): attuned's
// side of attune-worker --share-base (group_worker.h).
//
// A job that can share its base trains in a group's worker on its device: the first such job
// starts one (its log is the job's worker.log), and a later compatible job on the device is sent
// to it (SupervisorCommand.attach on one of its members' streams) instead of starting its own.
// Each job is still its own attempt, with its own stream, stop, reports and result; the worker
// exits when its last job has left. A worker that ends without a job's end is that job's crash
// (UNAVAILABLE, retried from its last checkpoint), for every job it was training. A job sent to
// a worker that was exiting (it never attaches) gets a worker of its own.
#ifndef ATTUNE_SERVER_WORKER_GROUP_WORKERS_H_
#define ATTUNE_SERVER_WORKER_GROUP_WORKERS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/engine/trainer.h"
#include "server/store/records.h"
#include "server/worker/supervisor.h"

namespace attune::worker {

class GroupWorkers {
 public:
  // `options` and `supervisor` as WorkerJobRunner's; `supervisor` must outlive this.
  GroupWorkers(const WorkerOptions& options, Supervisor* supervisor)
      : options_(options), supervisor_(supervisor) {}
  // Kills the workers still running (attuned is stopping).
  ~GroupWorkers();

  // Whether `job` on `devices` trains in a group's worker: one device that shares bases
  // (WorkerOptions::shares_base), not a remote one, and a job that can share
  // (engine::GroupIncompatibility); never with one-rank collectives (a process group each).
  bool Takes(const store::Job& job, const std::vector<std::string>& devices,
             bool one_rank_collectives) const;

  // Trains `job` on `device` in a group's worker, as the file comment says; blocks until it ends.
  // Its result, or UNAVAILABLE when its worker ended without reporting it.
  absl::StatusOr<engine::TrainResult> Run(const store::Job& job, const std::string& device,
                                          const std::string& output_dir,
                                          engine::TrainingObserver* observer);

 private:
  class Process;  // group_workers.cc: one worker and its members' attempts

  // A running worker on `device` that takes `attempt` (compatible with its first job, and told
  // to attach it), else a new worker with `attempt` first; null when one cannot be started
  // (*error says why).
  std::shared_ptr<Process> Place(const store::Job& job, const std::string& device,
                                 const std::string& output_dir,
                                 const std::shared_ptr<Attempt>& attempt, absl::Status* error);

  const WorkerOptions& options_;
  Supervisor* const supervisor_;
  absl::Mutex mu_;
  std::map<std::string, std::vector<std::shared_ptr<Process>>> by_device_ ABSL_GUARDED_BY(mu_);
};

}  // namespace attune::worker

#endif  // ATTUNE_SERVER_WORKER_GROUP_WORKERS_H_
