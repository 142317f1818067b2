#include "server/engine/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/remove_tree.h"
#include "common/sha256.h"
#include "common/status_macros.h"
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
  if (fd < 0) return absl::InternalError(absl::StrCat("checkpoint: cannot open ", path, " to sync"));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("checkpoint: fsync failed for ", path));
  return absl::OkStatus();
}

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("checkpoint: cannot write ", path));
  }
  return FsyncPath(path, O_RDONLY);
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("checkpoint: cannot read ", path));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat("checkpoint: bad JSON in ", path));
  return j;
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
  // Debris from an earlier crash, and a complete checkpoint of the same step (a resumed job
  // that writes it again), are replaced.
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.substr(name.size() - 4) == ".tmp") RemoveTree(entry.path().string());
  }
  fs::create_directories(fs::path(tmp_dir) / kResumeDir, ec);
  if (ec) return absl::InternalError(absl::StrCat("checkpoint: cannot create ", tmp_dir, ": ", ec.message()));

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
  if (!content.adapter_config.is_null()) {
    RETURN_IF_ERROR(WriteTextFile((fs::path(tmp_dir) / kConfigFile).string(),
                                  content.adapter_config.dump(2)));
    RETURN_IF_ERROR(fault());
  }
  RETURN_IF_ERROR(WriteTextFile((fs::path(tmp_dir) / kRecordFile).string(), content.record.dump(2)));
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
                          {"progress", content.progress}};
  RETURN_IF_ERROR(WriteTextFile((fs::path(tmp_dir) / kResumeDir / kStateFile).string(), state.dump(2)));
  RETURN_IF_ERROR(fault());
  RETURN_IF_ERROR(FsyncPath((fs::path(tmp_dir) / kResumeDir).string(), O_RDONLY | O_DIRECTORY));
  RETURN_IF_ERROR(FsyncPath(tmp_dir, O_RDONLY | O_DIRECTORY));

  if (std::string error; !RemoveTree(final_dir, &error)) {
    return absl::InternalError(absl::StrCat("checkpoint: cannot replace ", error));
  }
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("checkpoint: rename to ", final_dir, ": ", ec.message()));
  RETURN_IF_ERROR(FsyncPath(parent, O_RDONLY | O_DIRECTORY));

  CheckpointInfo info;
  info.step = content.step;
  info.dir = final_dir;
  ASSIGN_OR_RETURN(info.sha256, Sha256File((fs::path(final_dir) / kAdapterFile).string()));
  for (const char* name : {kAdapterFile, kConfigFile, kRecordFile}) {
    const fs::path p = fs::path(final_dir) / name;
    if (fs::exists(p)) info.adapter_bytes += static_cast<int64_t>(fs::file_size(p));
  }
  return info;
}

std::vector<int64_t> ListCheckpointSteps(const std::string& output_dir) {
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(CheckpointsDir(output_dir), ec)) {
    const int64_t step = ParseStepDir(entry.path().filename().string());
    if (step >= 0 && entry.is_directory()) steps.push_back(step);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

absl::StatusOr<std::optional<LoadedCheckpoint>> LoadLatestCheckpoint(const std::string& output_dir) {
  std::vector<int64_t> steps = ListCheckpointSteps(output_dir);
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
  loaded.progress = state.value("progress", nlohmann::json::object());
  return std::optional<LoadedCheckpoint>(std::move(loaded));
}

std::vector<int64_t> PruneCheckpoints(const std::string& output_dir, int keep_last,
                                      int64_t keep_step) {
  std::vector<int64_t> steps = ListCheckpointSteps(output_dir);
  std::vector<int64_t> deleted;
  const int64_t count = static_cast<int64_t>(steps.size());
  for (int64_t i = 0; i < count - keep_last; ++i) {
    if (steps[i] == keep_step) continue;
    if (RemoveTree((fs::path(CheckpointsDir(output_dir)) / StepDirName(steps[i])).string())) {
      deleted.push_back(steps[i]);
    }
  }
  return deleted;
}

}  // namespace attune::engine
