// RunTraining and CudaDevices (trainer.h). The recipe itself is TrainingRun (training_run.h);
// CheckSpec is in spec_check.cc.
#include "server/engine/trainer.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "server/engine/exception_status.h"
#include "server/engine/training_run.h"

namespace attune::engine {

absl::StatusOr<TrainResult> RunTraining(const TrainSpec& spec, const RunOptions& options,
                                        TrainingObserver* observer) {
  return CatchExceptions("training", [&]() -> absl::StatusOr<TrainResult> {
    TrainingRun run(spec, options, observer);
    return run.Execute();
  });
}

std::vector<std::string> CudaDevices() {
  std::vector<std::string> devices;
  if (!torch::cuda::is_available()) return devices;
  for (size_t i = 0; i < torch::cuda::device_count(); ++i) {
    devices.push_back(absl::StrCat("cuda:", i));
  }
  return devices;
}

}  // namespace attune::engine
