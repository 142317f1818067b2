#include "server/scheduler/job_runner.h"

namespace attune::scheduler {

absl::StatusOr<engine::SpecCheck> EngineJobRunner::Check(const TrainSpec& spec) {
  engine::CheckOptions options;
  options.data_roots = data_roots_;
  return engine::CheckSpec(spec, options);
}

absl::StatusOr<engine::TrainResult> EngineJobRunner::Run(const store::Job& job,
                                                         const std::vector<std::string>& devices,
                                                         const std::string& output_dir,
                                                         engine::TrainingObserver* observer) {
  if (devices.empty()) {
    return absl::InvalidArgumentError("devices: the scheduler gave the job no device");
  }
  engine::RunOptions options;
  options.device = devices[0];
  options.output_dir = output_dir;
  options.resume = engine::ResumeMode::kFromLatest;
  options.data_roots = data_roots_;
  return engine::RunTraining(job.spec.train, options, observer);
}

}  // namespace attune::scheduler
