#include <algorithm>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
  absl::StatusOr<engine::TrainResult> Run(const engine::GroupJob& job, const std::string& id) {
    std::promise<absl::StatusOr<engine::TrainResult>> promise;
    std::future<absl::StatusOr<engine::TrainResult>> result = promise.get_future();
    auto done = [&promise](absl::StatusOr<engine::TrainResult> r) {
      promise.set_value(std::move(r));
    };
    {
      absl::MutexLock lock(&mu_);
      absl::Status joined = JoinLocked(job, id, std::move(done));
      if (!joined.ok()) return joined;
    }
    return result.get();
  }

 private:
  struct Entry;

  // Joins a group of job's device that takes it, else starts one on a thread of its own.
  absl::Status JoinLocked(const engine::GroupJob& job, const std::string& id,
                          engine::TrainingGroup::Done done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<std::shared_ptr<Entry>>& entries = active_[job.options.device];
    std::string why;
    for (const std::shared_ptr<Entry>& entry : entries) {
      if (entry->Join(job, id, done, &why)) return absl::OkStatus();
    }
    auto entry = std::make_shared<Entry>();
    if (!entry->Join(job, id, std::move(done), &why)) return absl::InvalidArgumentError(why);
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

  // One group, and who is in it: each member hears (as a warning event) whom it trains beside
  // whenever that changes.
  struct Entry {
    Entry() {
      group.set_on_members([this](const std::vector<int>& indices) { Tell(indices); });
    }
    bool Join(const engine::GroupJob& job, const std::string& id, engine::TrainingGroup::Done done,
              std::string* why) {
      absl::MutexLock lock(&mu);
      if (!group.Join(job, std::move(done), why)) return false;
      members.push_back({id, job.observer, {}});
      return true;
    }
    void Tell(const std::vector<int>& indices) {
      absl::MutexLock lock(&mu);
      for (int i : indices) {
        std::set<std::string> others;
        for (int j : indices) {
          if (j != i) others.insert(members[j].id);
        }
        if (others == members[i].told || others.empty()) continue;
        members[i].told = others;
        members[i].observer->OnSharedBase({others.begin(), others.end()});
        members[i].observer->OnWarning(absl::StrCat(
            "shares its frozen base model with job(s) ", absl::StrJoin(others, ", "),
            " (attuned --share-base): one forward and backward pass over their batches, its "
            "own adapter, optimizer and checkpoints"));
      }
    }
    struct Member {
      std::string id;
      engine::TrainingObserver* observer;
      std::set<std::string> told;
    };
    absl::Mutex mu;
    std::vector<Member> members ABSL_GUARDED_BY(mu);  // in order of Join (the group's indices)
    engine::TrainingGroup group;
    std::thread thread;
  };

  absl::Mutex mu_;
  std::map<std::string, std::vector<std::shared_ptr<Entry>>> active_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Entry>> ended_ ABSL_GUARDED_BY(mu_);  // joined at destruction
};

EngineJobRunner::EngineJobRunner(std::vector<std::string> data_roots, bool share_base)
    : data_roots_(std::move(data_roots)),
      groups_(share_base ? std::make_unique<Groups>() : nullptr) {}

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
  engine::GroupJob grouped{job.spec.train, options, observer};
  if (groups_ != nullptr && engine::GroupIncompatibility(grouped, grouped).empty()) {
    return groups_->Run(grouped, job.id);
  }
  return engine::RunTraining(job.spec.train, options, observer);
}

}  // namespace attune::scheduler
