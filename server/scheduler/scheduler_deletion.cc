// Deleting a finished job, and measuring the disk its artifacts take.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/remove_tree.h"
#include "common/status_macros.h"
#include "common/tree_bytes.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/scheduler_events.h"

namespace attune::scheduler {
namespace {

// Moves `from` to `to`; OK when `from` does not exist (a job that never wrote a checkpoint).
absl::Status MoveIfPresent(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) == 0 || errno == ENOENT) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("cannot move ", from, " to ", to, ": ", std::strerror(errno)));
}

}  // namespace

void Scheduler::RecoverDeletions() {
  namespace fs = std::filesystem;
  const std::string prefix = ".deleting-";
  std::error_code ec;
  for (const fs::directory_entry& entry :
       fs::directory_iterator(fs::path(options_.artifacts_dir) / "jobs", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string id = name.substr(prefix.size());
    const std::string dir = absl::StrCat(options_.artifacts_dir, "/jobs/", id);
    absl::StatusOr<store::Job> job = store_->GetJob(id);
    std::string error;
    if (absl::IsNotFound(job.status())) {  // its rows went: finish the deletion
      if (!RemoveTree(entry.path().string(), &error)) LogJobError(id, error);
    } else if (job.ok()) {  // the store kept it: its files go back
      absl::Status restored = MoveIfPresent(entry.path().string(), dir);
      if (!restored.ok()) LogJobError(id, restored.ToString());
    }
  }
}

absl::StatusOr<int64_t> Scheduler::ArtifactBytes(const std::string& id) const {
  return TreeBytes(absl::StrCat(options_.artifacts_dir, "/jobs/", id));
}

absl::StatusOr<int64_t> Scheduler::Delete(const std::string& id) {
  absl::MutexLock delete_lock(&delete_mu_);
  std::optional<std::string> live_state;
  {
    absl::MutexLock lock(&mu_);
    const bool queued =
        std::any_of(queue_.begin(), queue_.end(), [&](const QueuedJob& q) { return q.id == id; });
    if (queued) live_state = "QUEUED";
    if (running_.count(id) > 0 || ending_.count(id) > 0) live_state = "RUNNING";
  }
  if (live_state.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " is ", *live_state, "; cancel it first"));
  }
  // The store checks the state again inside its transaction; this only keeps a live job's
  // directory in place.
  ASSIGN_OR_RETURN(store::Job job, store_->GetJob(id));
  if (!store::IsTerminal(job.state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " is ", store::JobStateName(job.state), "; cancel it first"));
  }
  const std::string dir = absl::StrCat(options_.artifacts_dir, "/jobs/", id);
  const std::string aside = absl::StrCat(options_.artifacts_dir, "/jobs/.deleting-", id);
  ASSIGN_OR_RETURN(int64_t bytes, TreeBytes(dir));
  RETURN_IF_ERROR(MoveIfPresent(dir, aside));
  if (absl::Status removed = events_.Remove(id); !removed.ok()) {
    absl::Status restored = MoveIfPresent(aside, dir);
    if (!restored.ok()) LogJobError(id, restored.ToString());
    return removed;
  }
  std::string error;
  if (!RemoveTree(aside, &error)) {
    return absl::InternalError(
        absl::StrCat("job ", id, " is deleted but its files could not be removed: ", error,
                     "; remove that directory by hand"));
  }
  return bytes;
}

}  // namespace attune::scheduler
