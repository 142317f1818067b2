#include "server/worker/attempt.h"

#include "server/worker/worker_protocol.h"

namespace attune::worker {

bool Attempt::Attach(WorkerStream* stream) {
  absl::MutexLock lock(&mu_);
  if (state_ != State::kWaiting) return false;
  state_ = State::kAttached;
  stream_ = stream;
  v1::SupervisorCommand command;
  *command.mutable_assignment() = assignment_;
  stream_->Write(command);
  SendStopLocked();
  return true;
}

void Attempt::Report(const v1::WorkerReport& report) {
  absl::MutexLock lock(&mu_);
  if (report.has_finished()) {
    finished_ = FromWire(report.finished());
    return;
  }
  if (observer_ == nullptr) return;
  switch (report.report_case()) {
    case v1::WorkerReport::kStarted:
      observer_->OnStart(FromWire(report.started()), report.started().resumed_from_step());
      break;
    case v1::WorkerReport::kStep:
      observer_->OnStep(FromWire(report.step()));
      break;
    case v1::WorkerReport::kEval:
      observer_->OnEval(FromWire(report.eval()));
      break;
    case v1::WorkerReport::kCheckpoint:
      observer_->OnCheckpoint(FromWire(report.checkpoint()));
      break;
    case v1::WorkerReport::kWarning:
      observer_->OnWarning(report.warning());
      break;
    case v1::WorkerReport::kSharedBase:
      observer_->OnSharedBase(
          {report.shared_base().job_ids().begin(), report.shared_base().job_ids().end()});
      break;
    default:  // a second Hello, or a report this build does not know: nothing to relay
      break;
  }
}

void Attempt::EndStream() {
  absl::MutexLock lock(&mu_);
  stream_ = nullptr;
  state_ = State::kEnded;
}

void Attempt::RequestStop() {
  absl::MutexLock lock(&mu_);
  stop_wanted_ = true;
  SendStopLocked();
}

void Attempt::Abort() {
  absl::MutexLock lock(&mu_);
  if (stream_ == nullptr) return;
  v1::SupervisorCommand command;
  command.mutable_abort();
  stream_->Write(command);
}

bool Attempt::SendAttach(const std::string& attempt_id) {
  absl::MutexLock lock(&mu_);
  if (stream_ == nullptr) return false;
  v1::SupervisorCommand command;
  command.set_attach(attempt_id);
  return stream_->Write(command);
}

void Attempt::SendStopLocked() {
  if (!stop_wanted_ || stop_sent_ || stream_ == nullptr) return;
  v1::SupervisorCommand command;
  command.mutable_stop();
  stream_->Write(command);
  stop_sent_ = true;
}

bool Attempt::attached() const {
  absl::MutexLock lock(&mu_);
  return state_ != State::kWaiting;
}

bool Attempt::AwaitStreamEnd(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto not_attached = [this]()
                          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return state_ != State::kAttached; };
  return mu_.AwaitWithTimeout(absl::Condition(&not_attached), timeout);
}

std::optional<absl::StatusOr<engine::TrainResult>> Attempt::finished() const {
  absl::MutexLock lock(&mu_);
  return finished_;
}

void Attempt::Detach() {
  absl::MutexLock lock(&mu_);
  observer_ = nullptr;
}

}  // namespace attune::worker
