#include "server/api/adapter_archive.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/metrics.h"

namespace attune::api {
namespace {

namespace fs = std::filesystem;

// Regular files directly in `dir`, sorted by name, skipping hidden and temporary files.
std::vector<fs::path> SortedFiles(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || absl::EndsWith(name, ".tmp")) continue;
    if (entry.is_regular_file(ec)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

absl::StatusOr<store::CheckpointRecord> SelectCheckpoint(
    const std::vector<store::CheckpointRecord>& checkpoints, const std::string& selector) {
  if (checkpoints.empty()) {
    return absl::FailedPreconditionError("checkpoint: the job has no checkpoint yet");
  }
  auto by_step = [](const store::CheckpointRecord& a, const store::CheckpointRecord& b) {
    return a.step < b.step;
  };
  if (selector.empty() || selector == "latest") {
    return *std::max_element(checkpoints.begin(), checkpoints.end(), by_step);
  }
  if (selector == "best") {
    const store::CheckpointRecord* best = nullptr;
    for (const store::CheckpointRecord& c : checkpoints) {
      if (!c.eval_metric) continue;
      if (best == nullptr || Outranks({c.step, *c.eval_metric}, {best->step, *best->eval_metric})) {
        best = &c;
      }
    }
    if (best != nullptr) return *best;
    return *std::max_element(checkpoints.begin(), checkpoints.end(), by_step);
  }
  int64_t step = 0;
  if (absl::StartsWith(selector, "step:") && absl::SimpleAtoi(selector.substr(5), &step)) {
    std::vector<std::string> steps;
    for (const store::CheckpointRecord& c : checkpoints) {
      if (c.step == step) return c;
      steps.push_back(absl::StrCat(c.step));
    }
    return absl::NotFoundError(absl::StrCat("checkpoint: no checkpoint at step ", step,
                                            "; available steps: ", absl::StrJoin(steps, ", ")));
  }
  return absl::InvalidArgumentError(absl::StrCat("checkpoint: unknown selector '", selector,
                                                 "'; expected latest, best or step:N"));
}

absl::StatusOr<std::vector<ArchiveFile>> ListArchiveFiles(const std::string& dir,
                                                          bool include_resume_state) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("checkpoint: ", dir, " is no longer on disk"));
  }
  std::vector<ArchiveFile> files;
  int64_t offset = 0;
  auto add = [&](const fs::path& path, const std::string& relative) {
    ArchiveFile file;
    file.relative_path = relative;
    file.absolute_path = path.string();
    file.size = static_cast<int64_t>(fs::file_size(path, ec));
    file.offset = offset;
    offset += file.size;
    files.push_back(std::move(file));
  };
  for (const fs::path& path : SortedFiles(dir)) add(path, path.filename().string());
  if (include_resume_state) {
    for (const fs::path& path : SortedFiles(fs::path(dir) / "resume")) {
      add(path, "resume/" + path.filename().string());
    }
  }
  return files;
}

}  // namespace attune::api
