#include <algorithm>
#include <future>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/engine/training_group.h"
#include "server/scheduler/job_runner.h"

namespace attune::scheduler {

// The shared-base groups training now, by device, each on its own thread.
class EngineJobRunner::Groups {
 public:
  ~Groups() {
    std::vector<std::shared_ptr<Entry>> all;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [device, entries] : active_) all.insert(all.end(), entries.begin(), entries.end());
      all.insert(all.end(), ended_.begin(), ended_.end());
    }
    for (auto& entry : all) {
      if (entry->thread.joinable()) entry->thread.join();
    }
  }

  // Trains `job` in a group on its device (joining one, else starting one); blocks until it
  // leaves the group, and returns its result.
  absl::StatusOr<engine::TrainResult> Run(const engine::GroupJob& job) {
    std::promise<absl::StatusOr<engine::TrainResult>> promise;
    std::future<absl::StatusOr<engine::TrainResult>> result = promise.get_future();
    auto done = [&promise](absl::StatusOr<engine::TrainResult> r) {
      promise.set_value(std::move(r));
    };
    {
      absl::MutexLock lock(&mu_);
      absl::Status joined = JoinLocked(job, std::move(done));
      if (!joined.ok()) return joined;
    }
    return result.get();
  }

 private:
  struct Entry {
    engine::TrainingGroup group;
    std::thread thread;
  };

  // Joins a group of job's device that takes it, else starts one on a thread of its own.
  absl::Status JoinLocked(const engine::GroupJob& job, engine::TrainingGroup::Done done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<std::shared_ptr<Entry>>& entries = active_[job.options.device];
    std::string why;
    for (const std::shared_ptr<Entry>& entry : entries) {
      if (entry->group.Join(job, done, &why)) return absl::OkStatus();
    }
    auto entry = std::make_shared<Entry>();
    if (!entry->group.Join(job, std::move(done), &why)) return absl::InvalidArgumentError(why);
    entries.push_back(entry);
    entry->thread = std::thread([this, entry, device = job.options.device] {
      entry->group.Run();
      absl::MutexLock lock(&mu_);
      std::vector<std::shared_ptr<Entry>>& list = active_[device];
      list.erase(std::find(list.begin(), list.end(), entry));
      ended_.push_back(entry);
    });
    return absl::OkStatus();
  }

  absl::Mutex mu_;
  std::map<std::string, std::vector<std::shared_ptr<Entry>>> active_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Entry>> ended_ ABSL_GUARDED_BY(mu_);  // joined at destruction
};

EngineJobRunner::EngineJobRunner(std::vector<std::string> data_roots,
                                 std::function<bool(const std::string& device)> shares_base)
    : data_roots_(std::move(data_roots)),
      shares_base_(std::move(shares_base)),
      groups_(shares_base_ ? std::make_unique<Groups>() : nullptr) {}

EngineJobRunner::~EngineJobRunner() = default;

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
  engine::GroupJob grouped{job.id, job.spec.train, options, observer};
  if (groups_ != nullptr && shares_base_(devices[0]) &&
      engine::GroupIncompatibility(grouped, grouped).empty()) {
    return groups_->Run(grouped);
  }
  return engine::RunTraining(job.spec.train, options, observer);
}

}  // namespace attune::scheduler
