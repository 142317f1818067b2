#include "server/scheduler/memory_admission.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace attune::scheduler {

std::optional<int64_t> AvailableHostMemory(const std::string& meminfo_path) {
  std::ifstream in(meminfo_path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    int64_t kib = 0;
    if (fields >> name >> kib && name == "MemAvailable:") return kib * 1024;
  }
  return std::nullopt;
}

absl::Status AdmitMemory(const TrainSpec& spec, int64_t estimated_bytes,
                         std::optional<int64_t> available_bytes, int ranks) {
  if (estimated_bytes <= 0 || !available_bytes.has_value()) return absl::OkStatus();
  ranks = std::max(ranks, 1);
  const int64_t needed = estimated_bytes > std::numeric_limits<int64_t>::max() / ranks
                             ? std::numeric_limits<int64_t>::max()
                             : estimated_bytes * ranks;
  if (needed <= *available_bytes) return absl::OkStatus();
  const std::string ranks_x = ranks > 1 ? absl::StrCat("ranks ", ranks, " x ") : "";
  return absl::ResourceExhaustedError(absl::StrFormat(
      "%sbatch_size %d x max_seq_len %d: training needs an estimated %.3g bytes (an upper bound) "
      "but the CPU has %.3g bytes available; lower %sbatch_size or max_seq_len",
      ranks_x, spec.batch_size, spec.max_seq_len, static_cast<double>(needed),
      static_cast<double>(*available_bytes), ranks > 1 ? "ranks, " : ""));
}

}  // namespace attune::scheduler
