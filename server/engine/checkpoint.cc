#include "server/engine/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/os_error.h"
#include "common/remove_tree.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "server/engine/tensor_file.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;

constexpr char kAdapterFile[] = "adapter_model.safetensors";
constexpr char kConfigFile[] = "adapter_config.json";
constexpr char kRecordFile[] = "attune.json";
constexpr char kResumeDir[] = "resume";
constexpr char kOptimizerFile[] = "optimizer.safetensors";
constexpr char kStateFile[] = "state.json";

std::string CheckpointsDir(const std::string& output_dir) {
  return (fs::path(output_dir) / "checkpoints").string();
}

std::string StepDirName(int64_t step) { return absl::StrFormat("step-%08d", step); }

// Parses "step-00000120" into 120; -1 for anything else (including ".tmp" debris).
int64_t ParseStepDir(const std::string& name) {
  if (name.size() != 13 || name.rfind("step-", 0) != 0) return -1;
  int64_t step = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

absl::Status FsyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("checkpoint: cannot open ", path, " to sync"));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("checkpoint: fsync failed for ", path));
  return absl::OkStatus();
}

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  {
    errno = 0;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return OsError(absl::StrCat("checkpoint: cannot write ", path), errno);
  }
  return FsyncPath(path, O_RDONLY);
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("checkpoint: cannot read ", path));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return absl::InvalidArgumentError(absl::StrCat("checkpoint: bad JSON in ", path));
  return j;
}

nlohmann::json ProgressJson(const ResumeProgress& progress) {
  return {{"best_score", progress.best_score.has_value() ? nlohmann::json(*progress.best_score)
                                                         : nlohmann::json()},
          {"best_step", progress.best_step},
          {"train_loss", progress.train_loss}};
}

ResumeProgress ProgressFromJson(const nlohmann::json& j) {
  ResumeProgress progress;
  if (!j.is_object()) return progress;
  const auto best = j.find("best_score");
  if (best != j.end() && best->is_number()) progress.best_score = best->get<double>();
  progress.best_step = j.value("best_step", int64_t{-1});
  progress.train_loss = j.value("train_loss", 0.0);
  return progress;
}

bool IsDebris(const std::string& name) {
  return name.size() > 4 && name.substr(name.size() - 4) == ".tmp";
}

// The adapter files' bytes, as a download carries them.
absl::StatusOr<int64_t> AdapterBytes(const std::string& dir) {
  int64_t bytes = 0;
  for (const char* name : {kAdapterFile, kConfigFile, kRecordFile}) {
    const fs::path p = fs::path(dir) / name;
    std::error_code ec;
    if (!fs::exists(p, ec)) continue;
    const uintmax_t size = fs::file_size(p, ec);
    if (ec)
      return absl::InternalError(absl::StrCat("checkpoint: ", p.string(), ": ", ec.message()));
    bytes += static_cast<int64_t>(size);
  }
  return bytes;
}

// Writes every file of `content` into `tmp_dir` (which has its resume/ directory), each one
// fsynced. `fault_after_files` as WriteCheckpoint's.
absl::Status WriteFiles(const std::string& tmp_dir, const CheckpointContent& content,
                        int fault_after_files) {
  int files_written = 0;
  auto fault = [&]() -> absl::Status {
    ++files_written;
    if (fault_after_files >= 0 && files_written > fault_after_files) {
      return absl::InternalError("checkpoint: injected fault");
    }
    return absl::OkStatus();
  };

  const std::string adapter_path = (fs::path(tmp_dir) / kAdapterFile).string();
  RETURN_IF_ERROR(WriteTensorsFile(adapter_path, content.adapter, {{"format", "pt"}}));
  RETURN_IF_ERROR(FsyncPath(adapter_path, O_RDONLY));
  RETURN_IF_ERROR(fault());
  if (content.adapter_config.has_value()) {
    RETURN_IF_ERROR(WriteTextFile((fs::path(tmp_dir) / kConfigFile).string(),
                                  AdapterConfigJson(*content.adapter_config)));
    RETURN_IF_ERROR(fault());
  }
  RETURN_IF_ERROR(WriteTextFile((fs::path(tmp_dir) / kRecordFile).string(),
                                CheckpointRecordJson(content.record)));
  RETURN_IF_ERROR(fault());

  std::vector<std::pair<std::string, torch::Tensor>> optimizer(content.optimizer_state.begin(),
                                                               content.optimizer_state.end());
  if (content.rng_state.defined()) optimizer.emplace_back("__rng_state__", content.rng_state);
  const std::string optimizer_path = (fs::path(tmp_dir) / kResumeDir / kOptimizerFile).string();
  RETURN_IF_ERROR(WriteTensorsFile(optimizer_path, optimizer, {}));
  RETURN_IF_ERROR(FsyncPath(optimizer_path, O_RDONLY));
  RETURN_IF_ERROR(fault());
  nlohmann::json state = {{"step", content.step},
                          {"optimizer_steps", content.optimizer_steps},
                          {"progress", ProgressJson(content.progress)}};
  RETURN_IF_ERROR(
      WriteTextFile((fs::path(tmp_dir) / kResumeDir / kStateFile).string(), state.dump(2)));
  RETURN_IF_ERROR(fault());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CheckpointInfo> WriteCheckpoint(const std::string& output_dir,
                                               const CheckpointContent& content,
                                               int fault_after_files) {
  const std::string parent = CheckpointsDir(output_dir);
  const std::string final_dir = (fs::path(parent) / StepDirName(content.step)).string();
  const std::string tmp_dir = final_dir + ".tmp";
  std::error_code ec;
  fs::create_directories(parent, ec);
  // Debris of this step from an earlier crash is replaced (PruneCheckpoints removes the rest).
  if (std::string error; !RemoveTree(tmp_dir, &error)) {
    return absl::InternalError(absl::StrCat("checkpoint: cannot remove debris ", error));
  }
  fs::create_directories(fs::path(tmp_dir) / kResumeDir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("checkpoint: cannot create ", tmp_dir, ": ", ec.message()));

  RETURN_IF_ERROR(WriteFiles(tmp_dir, content, fault_after_files));
  RETURN_IF_ERROR(FsyncPath((fs::path(tmp_dir) / kResumeDir).string(), O_RDONLY | O_DIRECTORY));
  RETURN_IF_ERROR(FsyncPath(tmp_dir, O_RDONLY | O_DIRECTORY));

  if (std::string error; !RemoveTree(final_dir, &error)) {
    return absl::InternalError(absl::StrCat("checkpoint: cannot replace ", error));
  }
  fs::rename(tmp_dir, final_dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("checkpoint: rename to ", final_dir, ": ", ec.message()));
  RETURN_IF_ERROR(FsyncPath(parent, O_RDONLY | O_DIRECTORY));

  return DescribeCheckpoint(final_dir, content.step);
}

absl::StatusOr<CheckpointInfo> DescribeCheckpoint(const std::string& dir, int64_t step) {
  CheckpointInfo info;
  info.step = step;
  info.dir = dir;
  ASSIGN_OR_RETURN(info.sha256, Sha256File((fs::path(dir) / kAdapterFile).string()));
  ASSIGN_OR_RETURN(info.adapter_bytes, AdapterBytes(dir));
  return info;
}

absl::StatusOr<std::vector<int64_t>> ListCheckpointSteps(const std::string& output_dir) {
  const std::string dir = CheckpointsDir(output_dir);
  std::vector<int64_t> steps;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return steps;
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const int64_t step = ParseStepDir(it->path().filename().string());
    std::error_code type_ec;
    if (step >= 0 && it->is_directory(type_ec)) steps.push_back(step);
  }
  if (ec) {
    return absl::InternalError(absl::StrCat("checkpoints: cannot list ", dir, ": ", ec.message()));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

absl::StatusOr<std::optional<LoadedCheckpoint>> LoadLatestCheckpoint(
    const std::string& output_dir) {
  ASSIGN_OR_RETURN(std::vector<int64_t> steps, ListCheckpointSteps(output_dir));
  if (steps.empty()) return std::optional<LoadedCheckpoint>();
  LoadedCheckpoint loaded;
  loaded.step = steps.back();
  loaded.dir = (fs::path(CheckpointsDir(output_dir)) / StepDirName(loaded.step)).string();
  ASSIGN_OR_RETURN(loaded.adapter, ReadTensorsFile((fs::path(loaded.dir) / kAdapterFile).string()));
  ASSIGN_OR_RETURN(loaded.optimizer_state,
                   ReadTensorsFile((fs::path(loaded.dir) / kResumeDir / kOptimizerFile).string()));
  auto rng = loaded.optimizer_state.find("__rng_state__");
  if (rng != loaded.optimizer_state.end()) {
    loaded.rng_state = rng->second;
    loaded.optimizer_state.erase(rng);
  }
  ASSIGN_OR_RETURN(nlohmann::json state,
                   ReadJsonFile((fs::path(loaded.dir) / kResumeDir / kStateFile).string()));
  loaded.optimizer_steps = state.value("optimizer_steps", int64_t{0});
  loaded.progress = ProgressFromJson(state.value("progress", nlohmann::json::object()));
  return std::optional<LoadedCheckpoint>(std::move(loaded));
}

PruneResult PruneCheckpoints(const std::string& output_dir, int keep_last, int64_t keep_step,
                             const TreeRemover& remove) {
  PruneResult result;
  absl::StatusOr<std::vector<int64_t>> steps = ListCheckpointSteps(output_dir);
  if (!steps.ok()) {
    result.warnings.push_back(std::string(steps.status().message()));
    return result;
  }
  const std::string parent = CheckpointsDir(output_dir);
  const int64_t count = static_cast<int64_t>(steps->size());
  for (int64_t i = 0; i < count - keep_last; ++i) {
    const int64_t step = (*steps)[i];
    if (step == keep_step) continue;
    std::string error;
    if (remove((fs::path(parent) / StepDirName(step)).string(), &error)) {
      result.deleted.push_back(step);
    } else {
      result.warnings.push_back(
          absl::StrCat("checkpoints: cannot remove step ", step, ": ", error));
    }
  }
  std::vector<std::string> debris;
  std::error_code ec;
  for (fs::directory_iterator it(parent, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (IsDebris(it->path().filename().string())) debris.push_back(it->path().string());
  }
  for (const std::string& path : debris) {
    if (std::string error; !remove(path, &error)) {
      result.warnings.push_back(absl::StrCat("checkpoints: cannot remove debris ", error));
    }
  }
  return result;
}

}  // namespace attune::engine
