#include "server/scheduler/memory_admission.h"

#include <fstream>
#include <sstream>

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
                         std::optional<int64_t> available_bytes) {
  if (estimated_bytes <= 0 || !available_bytes.has_value() || estimated_bytes <= *available_bytes) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "batch_size %d x max_seq_len %d: training needs an estimated %.3g bytes (an upper bound) "
      "but the CPU has %.3g bytes available; lower batch_size or max_seq_len",
      spec.batch_size, spec.max_seq_len, static_cast<double>(estimated_bytes),
      static_cast<double>(*available_bytes)));
}

}  // namespace attune::scheduler
