#include "server/worker/group_workers.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/engine/training_group.h"
#include "server/scheduler/device_inventory.h"
#include "server/worker/attempt.h"
#include "server/worker/child_process.h"

namespace attune::worker {
namespace {

constexpr absl::Duration kStreamDrain = absl::Seconds(10);  // as supervisor.cc's
constexpr int kLogLines = 8;
constexpr size_t kLogBytes = 2048;
constexpr int kPlacements = 3;
constexpr bool kNever = false;  // a condition to wait on for a time, releasing the lock  // a job
                                // sent to exiting workers gets a new one by the third

}  // namespace

// One group's worker: started on a thread of its own, which waits for its end (the worker gets
// SIGKILL when the thread that started it ends, child_process.h), and the attempts it trains.
class GroupWorkers::Process {
 public:
  Process(engine::GroupJob first, std::string log)
      : first_(std::move(first)), log_(std::move(log)) {}
  ~Process() {
    Kill();
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Start(const WorkerOptions& options, const std::shared_ptr<Attempt>& attempt) {
    {
      absl::MutexLock lock(&mu_);
      starter_ = attempt;
      members_.push_back(attempt);
    }
    const std::vector<std::string> args = {"--supervisor", options.supervisor_address, "--attempt",
                                           attempt->id(), "--share-base"};
    std::promise<absl::Status> started;
    std::future<absl::Status> result = started.get_future();
    thread_ = std::thread([this, &options, args, &started] {
      absl::StatusOr<std::unique_ptr<ChildProcess>> child =
          ChildProcess::Start(options.worker_binary, args, log_);
      absl::MutexLock lock(&mu_);
      if (!child.ok()) {
        status_ = 127 << 8;
        started.set_value(child.status());
        return;
      }
      child_ = *std::move(child);
      started.set_value(absl::OkStatus());
      while (!(status_ = child_->Poll()).has_value()) {
        mu_.AwaitWithTimeout(absl::Condition(&kNever), options.poll_interval);
      }
    });
    return result.get();
  }

  // Whether the worker takes `attempt`: it has not ended, `job` may share with its first job,
  // and one of its members' open streams carried the attach. Waits up to `timeout` for one to
  // open (a worker just started has not attached yet).
  bool Offer(const engine::GroupJob& job, const std::shared_ptr<Attempt>& attempt,
             absl::Duration timeout, absl::Duration poll) {
    if (!engine::GroupIncompatibility(job, first_).empty()) return false;
    const absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock lock(&mu_);
    while (!status_.has_value()) {
      for (const std::shared_ptr<Attempt>& member : members_) {
        if (!member->SendAttach(attempt->id())) continue;
        members_.push_back(attempt);
        return true;
      }
      if (absl::Now() > deadline) return false;
      mu_.AwaitWithTimeout(absl::Condition(&kNever), poll);
    }
    return false;
  }

  // Waits for `attempt` to end: relays stops, and gives up on an attempt that does not attach
  // in time (killing the worker when it is the first). *never_attached: the worker ended, or
  // the time ran out, before the attempt attached.
  absl::StatusOr<engine::TrainResult> Await(const std::shared_ptr<Attempt>& attempt,
                                            engine::TrainingObserver* observer,
                                            const WorkerOptions& options, bool* never_attached) {
    const absl::Time attach_deadline = absl::Now() + options.attach_timeout;
    *never_attached = false;
    for (;;) {
      if (observer->StopRequested()) attempt->RequestStop();
      if (attempt->attached() && attempt->AwaitStreamEnd(absl::ZeroDuration())) break;
      const bool ended = status().has_value();
      if (!attempt->attached() && (ended || absl::Now() > attach_deadline)) {
        if (first(attempt)) Kill();
        *never_attached = true;
        return absl::UnavailableError(
            absl::StrCat("the shared-base worker did not take the job within ",
                         absl::FormatDuration(options.attach_timeout), ended ? " (it ended)" : ""));
      }
      if (ended) {
        attempt->AwaitStreamEnd(kStreamDrain);
        break;
      }
      absl::SleepFor(options.poll_interval);
    }
    std::optional<absl::StatusOr<engine::TrainResult>> finished = attempt->finished();
    if (finished.has_value()) return *std::move(finished);
    return Crash();
  }

  void Leave(const std::shared_ptr<Attempt>& attempt) {
    absl::MutexLock lock(&mu_);
    members_.erase(std::remove(members_.begin(), members_.end(), attempt), members_.end());
  }

  void Kill() {
    absl::MutexLock lock(&mu_);
    if (child_ != nullptr && !status_.has_value()) child_->Signal(SIGKILL);
  }

  // Whether the worker was started for `attempt`: until that one attaches, no other can (each
  // is sent on an attached member's stream), so killing the worker then harms no other job.
  bool first(const std::shared_ptr<Attempt>& attempt) {
    absl::MutexLock lock(&mu_);
    return starter_ == attempt;
  }

  std::optional<int> status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

  // Why a job's attempt ended without its end reported: the worker's exit (waited for a while:
  // a killed worker's streams end before it is reaped), or, still running, that it closed the
  // stream; and the last lines of its log.
  absl::Status Crash() {
    absl::MutexLock lock(&mu_);
    auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return status_.has_value(); };
    mu_.AwaitWithTimeout(absl::Condition(&ended), kStreamDrain);  // its stream ends first
    std::string reason = absl::StrCat(
        "the shared-base worker",
        child_ != nullptr ? absl::StrCat(" (pid ", child_->pid(), ")") : std::string(), " ",
        status_.has_value() ? DescribeWaitStatus(*status_) : std::string("closed the job's stream"),
        " before it reported the job's end");
    const std::string tail = LastLines(log_, kLogLines, kLogBytes);
    if (!tail.empty()) absl::StrAppend(&reason, "; the last lines of ", log_, ":\n", tail);
    return absl::UnavailableError(reason);
  }

 private:
  const engine::GroupJob first_;
  const std::string log_;
  std::thread thread_;
  absl::Mutex mu_;
  std::unique_ptr<ChildProcess> child_ ABSL_GUARDED_BY(mu_);
  std::optional<int> status_ ABSL_GUARDED_BY(mu_);                      // once it has ended
  std::shared_ptr<Attempt> starter_ ABSL_GUARDED_BY(mu_);               // the worker's --attempt
  std::vector<std::shared_ptr<Attempt>> members_ ABSL_GUARDED_BY(mu_);  // in order of joining
};

GroupWorkers::~GroupWorkers() {
  absl::MutexLock lock(&mu_);
  for (auto& [device, processes] : by_device_) {
    for (const std::shared_ptr<Process>& process : processes) process->Kill();
  }
}

bool GroupWorkers::Takes(const store::Job& job, const std::vector<std::string>& devices,
                         bool one_rank_collectives) const {
  if (devices.size() != 1 || devices[0] == scheduler::kRemoteCpu || one_rank_collectives ||
      !options_.shares_base(devices[0])) {
    return false;
  }
  engine::GroupJob self{job.id, job.spec.train, {}, nullptr};
  self.options.device = devices[0];
  return engine::GroupIncompatibility(self, self).empty();
}

absl::StatusOr<engine::TrainResult> GroupWorkers::Run(const store::Job& job,
                                                      const std::string& device,
                                                      const std::string& output_dir,
                                                      engine::TrainingObserver* observer) {
  std::error_code ec;
  std::filesystem::create_directories(output_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create ", output_dir, ": ", ec.message()));
  }
  absl::StatusOr<engine::TrainResult> result = absl::InternalError("not started");
  for (int placement = 1; placement <= kPlacements; ++placement) {
    v1::Assignment assignment = MakeAssignment(job, {device}, output_dir, options_.data_roots);
    assignment.set_world_size(1);
    std::shared_ptr<Attempt> attempt = supervisor_->Open(std::move(assignment), observer);
    if (attempt == nullptr) return absl::InternalError("cannot open a worker attempt");
    absl::Status error;
    std::shared_ptr<Process> process = Place(job, device, output_dir, attempt, &error);
    bool never_attached = false;
    if (process != nullptr) {
      result = process->Await(attempt, observer, options_, &never_attached);
      process->Leave(attempt);
    } else {
      result = error;
    }
    supervisor_->Close(attempt);
    if (!never_attached) break;
  }
  return result;
}

std::shared_ptr<GroupWorkers::Process> GroupWorkers::Place(const store::Job& job,
                                                           const std::string& device,
                                                           const std::string& output_dir,
                                                           const std::shared_ptr<Attempt>& attempt,
                                                           absl::Status* error) {
  engine::GroupJob self{job.id, job.spec.train, {}, nullptr};
  self.options.device = device;
  std::vector<std::shared_ptr<Process>> running;
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::shared_ptr<Process>>& list = by_device_[device];
    list.erase(std::remove_if(list.begin(), list.end(),
                              [](const auto& p) { return p->status().has_value(); }),
               list.end());
    running = list;
  }
  for (const std::shared_ptr<Process>& process : running) {
    if (process->Offer(self, attempt, options_.attach_timeout, options_.poll_interval)) {
      return process;
    }
  }
  auto process = std::make_shared<Process>(self, output_dir + "/worker.log");
  *error = process->Start(options_, attempt);
  if (!error->ok()) return nullptr;
  absl::MutexLock lock(&mu_);
  by_device_[device].push_back(process);
  return process;
}

}  // namespace attune::worker
