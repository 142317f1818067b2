#include "server/engine/step_reporter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/engine/device_memory.h"

namespace attune::engine {

StepReporter::StepReporter(torch::Device device, int metrics_every, int64_t total_steps,
                           int64_t steps_per_epoch, TrainingObserver* observer)
    : device_(device),
      metrics_every_(metrics_every),
      total_steps_(total_steps),
      steps_per_epoch_(steps_per_epoch),
      observer_(observer) {}

absl::Status StepReporter::Add(PendingStep step) {
  pending_.push_back(std::move(step));
  if (Due()) RETURN_IF_ERROR(Flush());
  return absl::OkStatus();
}

bool StepReporter::Due() const {
  if (metrics_every_ > 0) return static_cast<int>(pending_.size()) >= metrics_every_;
  return !device_.is_cuda() ||
         std::chrono::steady_clock::now() - last_report_ >= std::chrono::milliseconds(500);
}

absl::Status StepReporter::Flush() {
  if (pending_.empty()) return absl::OkStatus();
  std::vector<torch::Tensor> values;
  for (const PendingStep& p : pending_) {
    values.push_back(p.loss.to(torch::kFloat64));
    values.push_back(p.grad_norm.to(torch::kFloat64));
    values.push_back(p.finite.to(torch::kFloat64));
  }
  const torch::Tensor host = torch::stack(values).to(torch::kCPU);
  const auto read = host.accessor<double, 1>();
  const std::optional<DeviceMemory> memory = ReadDeviceMemory(device_);
  const auto now = std::chrono::steady_clock::now();
  const double seconds =
      std::max(std::chrono::duration<double>(now - last_report_).count() / pending_.size(), 1e-9);
  last_report_ = now;
  std::vector<PendingStep> pending = std::move(pending_);
  pending_.clear();
  for (size_t i = 0; i < pending.size(); ++i) {
    RETURN_IF_ERROR(
        Report(pending[i], read[3 * i], read[3 * i + 1], read[3 * i + 2] != 0, seconds, memory));
  }
  return absl::OkStatus();
}

absl::Status StepReporter::Report(const PendingStep& p, double loss, double grad_norm, bool finite,
                                  double seconds, const std::optional<DeviceMemory>& memory) {
  StepMetrics metrics;
  metrics.step = p.step + 1;
  metrics.total_steps = total_steps_;
  metrics.epoch = static_cast<double>(p.step + 1) / static_cast<double>(steps_per_epoch_);
  metrics.train_loss = loss;
  metrics.learning_rates = p.learning_rates;
  metrics.tokens_per_second = static_cast<double>(p.tokens) / seconds;
  metrics.samples_per_second = static_cast<double>(p.samples) / seconds;
  metrics.tokens = p.tokens;
  metrics.samples = p.samples;
  metrics.device_memory = memory;
  if (!finite) {
    metrics.skipped = true;
    if (++non_finite_in_a_row_ >= kMaxNonFiniteInARow) {
      return absl::InternalError(
          absl::StrCat("training: the loss or gradient was not finite for ", kMaxNonFiniteInARow,
                       " steps in a row (last at step ", p.step + 1,
                       "); try a lower learning_rate or lr_ratios, or check the data"));
    }
    observer_->OnWarning(
        absl::StrCat("step ", p.step + 1, ": loss or gradient is not finite; step skipped"));
  } else {
    non_finite_in_a_row_ = 0;
    metrics.grad_norm = grad_norm;
    last_train_loss_ = metrics.train_loss;
  }
  observer_->OnStep(metrics);
  return absl::OkStatus();
}

}  // namespace attune::engine
