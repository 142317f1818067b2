// The seam between the scheduler and the training engine.
//
// `JobRunner` is what the scheduler calls to check a job at submit time and to train it on the
// devices it was given. `EngineJobRunner` is the real one (engine::CheckSpec /
// engine::RunTraining); tests use a fake runner whose steps they control. No LibTorch types appear
// here.
#ifndef ATTUNE_SERVER_SCHEDULER_JOB_RUNNER_H_
#define ATTUNE_SERVER_SCHEDULER_JOB_RUNNER_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "server/engine/trainer.h"
#include "server/store/records.h"

namespace attune::scheduler {

class JobRunner {
 public:
  virtual ~JobRunner() = default;

  // Checks `spec` against its files (model, tokenizer, data) without training. Returns what it
  // found, or INVALID_ARGUMENT naming the field. Called on the submitting thread; must be
  // thread-safe.
  virtual absl::StatusOr<engine::SpecCheck> Check(const TrainSpec& spec) = 0;

  // Trains `job` on `devices` (one entry per rank: a GPU each for gpus = N, a CPU slot each, or
  // one CPU/GPU slot for one rank, for gpus = 0; a device repeats for several slots of it), writing
  // checkpoints under `output_dir` and resuming from the newest one there. Blocks until the job
  // completes, stops (observer->StopRequested()), or fails (an error status). Called on the job's
  // own thread; several calls run at once. `observer` outlives the call. May throw; the scheduler
  // catches everything at the thread boundary.
  virtual absl::StatusOr<engine::TrainResult> Run(const store::Job& job,
                                                  const std::vector<std::string>& devices,
                                                  const std::string& output_dir,
                                                  engine::TrainingObserver* observer) = 0;
};

// The real runner: engine::CheckSpec, and engine::RunTraining with RunOptions{device =
// devices[0], output_dir, resume = kFromLatest}, both with the server's data roots (every file
// a job reads is opened inside them). One rank only: a job given several devices fails with
// INVALID_ARGUMENT (data-parallel ranks run in worker processes). With `shares_base`, a job joins
// the shared-base group training on its device when there is one it is compatible with
// (engine/training_group.h), else starts one that later jobs on the device may join; each
// group trains on a thread of its own while its jobs' Run calls wait for their results.
// Thread-safe.
class EngineJobRunner : public JobRunner {
 public:
  // `data_roots`: resolved directories (api::DataRoots::roots()), never empty in attuned.
  // `shares_base`: whether jobs on a device may share their base (attuned --share-base); null =
  // none does.
  explicit EngineJobRunner(std::vector<std::string> data_roots,
                           std::function<bool(const std::string& device)> shares_base = nullptr);
  ~EngineJobRunner() override;

  absl::StatusOr<engine::SpecCheck> Check(const TrainSpec& spec) override;
  absl::StatusOr<engine::TrainResult> Run(const store::Job& job,
                                          const std::vector<std::string>& devices,
                                          const std::string& output_dir,
                                          engine::TrainingObserver* observer) override;

 private:
  class Groups;                                // engine_job_runner.cc
  const std::vector<std::string> data_roots_;  // constant after construction
  const std::function<bool(const std::string&)> shares_base_;
  const std::unique_ptr<Groups> groups_;  // null without shares_base_
};

}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_JOB_RUNNER_H_
