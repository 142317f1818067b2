#include "absl/strings/str_cat.h"
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
  if (devices.size() > 1) {  // never train one rank on devices reserved for several
    return absl::InvalidArgumentError(absl::StrCat(
        "ranks: ", devices.size(),
        " ranks need a worker process each; attuned --job-processes off trains one rank only"));
  }
  engine::RunOptions options;
  options.device = devices[0];
  options.output_dir = output_dir;
  options.resume = engine::ResumeMode::kFromLatest;
  options.data_roots = data_roots_;
  return engine::RunTraining(job.spec.train, options, observer);
}

}  // namespace attune::scheduler
