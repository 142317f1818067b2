// One attempt of one job in a worker process, as attuned sees it: what the worker is told
// (its Assignment), the worker's stream once it attaches, and what it reported. Shared by the
// job's thread (WorkerJobRunner::Run), which waits for the worker and asks it to stop, and the
// gRPC thread serving the worker's Attach stream, which relays its reports. Thread-safe.
#ifndef ATTUNE_SERVER_WORKER_ATTEMPT_H_
#define ATTUNE_SERVER_WORKER_ATTEMPT_H_

#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "attune/worker/v1/worker.grpc.pb.h"
#include "server/engine/trainer.h"

namespace attune::worker {

using WorkerStream = grpc::ServerReaderWriter<v1::SupervisorCommand, v1::WorkerReport>;

class Attempt {
 public:
  Attempt(std::string id, v1::Assignment assignment, engine::TrainingObserver* observer)
      : id_(std::move(id)), assignment_(std::move(assignment)), observer_(observer) {}

  const std::string& id() const { return id_; }

  // The Attach handler's side. Attach sends the Assignment (and a Stop asked for before) on
  // `stream`, which stays valid until EndStream; false when a stream was attached before.
  bool Attach(WorkerStream* stream);
  // Relays one report to the observer (nothing after Detach); Finished is kept for Result.
  void Report(const v1::WorkerReport& report);
  void EndStream();

  // The job thread's side. RequestStop sends Stop once (at Attach when not attached yet).
  void RequestStop();
  // Sends Abort (now, if attached): the worker exits without finishing its step.
  void Abort();
  // Asks the attempt's worker (a shared-base group's, attune-worker --share-base) to train the
  // attempt `attempt_id` too (SupervisorCommand.attach). False when its stream is not open.
  bool SendAttach(const std::string& attempt_id);
  bool attached() const;
  // Waits until the stream has ended, or was never attached; false on timeout.
  bool AwaitStreamEnd(absl::Duration timeout);
  // What Finished said; nullopt when the worker sent none.
  std::optional<absl::StatusOr<engine::TrainResult>> finished() const;
  // No report reaches the observer after this returns.
  void Detach();

 private:
  enum class State { kWaiting, kAttached, kEnded };

  // Writes Stop on the stream if one is wanted, attached and not sent yet.
  void SendStopLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string id_;
  const v1::Assignment assignment_;
  mutable absl::Mutex mu_;
  engine::TrainingObserver* observer_ ABSL_GUARDED_BY(mu_);  // null after Detach
  WorkerStream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  State state_ ABSL_GUARDED_BY(mu_) = State::kWaiting;
  bool stop_wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_sent_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::StatusOr<engine::TrainResult>> finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace attune::worker

#endif  // ATTUNE_SERVER_WORKER_ATTEMPT_H_
