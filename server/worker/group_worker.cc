#include "server/worker/group_worker.h"

#include <algorithm>
#include <atomic>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/engine/training_group.h"
#include "server/worker/worker_session.h"

namespace attune::worker {
namespace {

using Done = engine::TrainingGroup::Done;

// The group worker's attempts and groups. Sessions (one thread per attempt) add their jobs; Run
// trains one group after another on the calling thread while jobs are there.
class GroupWorker {
 public:
  explicit GroupWorker(const std::string& address)
      : stub_(v1::Supervisor::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {}

  int Run(const std::string& first_attempt) {
    Expect(first_attempt, /*first=*/true);
    for (;;) {
      auto group = std::make_unique<engine::TrainingGroup>();
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !pending_.empty() || expected_ == 0;
        };
        mu_.Await(absl::Condition(&ready));
        if (pending_.empty()) {
          closed_ = true;
          break;
        }
        current_ = group.get();
        current_first_ = pending_.front().first;
        for (auto& [job, done] : pending_) JoinLocked(std::move(job), std::move(done));
        pending_.clear();
      }
      group->Run();
      absl::MutexLock lock(&mu_);
      current_ = nullptr;
    }
    std::vector<std::thread> sessions;
    {
      absl::MutexLock lock(&mu_);  // closed_: no session starts now
      sessions.swap(sessions_);
    }
    for (std::thread& t : sessions) t.join();
    absl::MutexLock lock(&mu_);
    return exit_code_;
  }

 private:
  // A new attempt to train (on a stream's reader thread, or Run's for the first): its session
  // starts on a thread of its own, unless the worker is exiting.
  void Expect(const std::string& attempt_id, bool first = false) {
    absl::MutexLock lock(&mu_);
    if (closed_) {
      std::cerr << "attune-worker: exiting; attempt " << attempt_id << " not taken" << std::endl;
      return;
    }
    ++expected_;
    sessions_.emplace_back([this, attempt_id, first] { Session(attempt_id, first); });
  }

  // One attempt: its stream, its job in the group, its end.
  void Session(const std::string& attempt_id, bool first) {
    AttemptStream attempt;
    v1::Hello hello;
    hello.set_attempt(attempt_id);
    if (!OpenAttempt(*stub_, hello, &attempt)) {
      absl::MutexLock lock(&mu_);
      --expected_;
      if (first) exit_code_ = std::max(exit_code_, 2);
      return;
    }
    std::atomic<bool> stop{false};
    std::thread reader([&] {  // Stop, and the attempts attuned adds; the stream's end stops too
      v1::SupervisorCommand next;
      while (attempt.stream->Read(&next)) {
        if (next.has_stop()) stop = true;
        if (!next.attach().empty()) Expect(next.attach());
      }
      stop = true;
    });
    WorkerObserver observer(attempt.stream.get(), &stop, /*quiet=*/false);
    std::promise<absl::StatusOr<engine::TrainResult>> promise;
    std::future<absl::StatusOr<engine::TrainResult>> result = promise.get_future();
    absl::StatusOr<AssignedJob> job = JobOf(attempt.assignment, "");
    Done done = [&promise](absl::StatusOr<engine::TrainResult> r) {
      promise.set_value(std::move(r));
    };
    if (job.ok()) {
      Add({attempt.assignment.job_id(), job->spec, job->options, &observer}, std::move(done));
    } else {
      {
        absl::MutexLock lock(&mu_);
        --expected_;
      }
      done(job.status());
    }
    const int code = ReportEnd(attempt, observer, result.get(), reader);
    absl::MutexLock lock(&mu_);
    exit_code_ = std::max(exit_code_, code);
  }

  // A session's job joins the group training now, or waits for the next one (the group has just
  // ended, or none trains yet); one the group refuses ends with the reason.
  void Add(engine::GroupJob job, Done done) {
    absl::MutexLock lock(&mu_);
    --expected_;
    if (current_ != nullptr) {
      std::string why = engine::GroupIncompatibility(job, *current_first_);
      if (!why.empty()) {
        done(absl::InvalidArgumentError(why));
        return;
      }
      if (current_->Join(job, done, &why)) return;
    }
    pending_.emplace_back(std::move(job), std::move(done));
  }

  void JoinLocked(engine::GroupJob job, Done done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string why;
    if (!current_->Join(job, done, &why)) done(absl::InvalidArgumentError(why));
  }

  const std::unique_ptr<v1::Supervisor::Stub> stub_;
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;  // exiting: no attempt is taken now
  int expected_ ABSL_GUARDED_BY(mu_) = 0;     // sessions whose job has not been added yet
  std::vector<std::pair<engine::GroupJob, Done>> pending_ ABSL_GUARDED_BY(mu_);
  engine::TrainingGroup* current_ ABSL_GUARDED_BY(mu_) = nullptr;  // the group training now
  std::optional<engine::GroupJob> current_first_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> sessions_ ABSL_GUARDED_BY(mu_);
  int exit_code_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

int RunGroupWorker(const std::string& address, const std::string& first_attempt) {
  GroupWorker worker(address);
  return worker.Run(first_attempt);
}

}  // namespace attune::worker
