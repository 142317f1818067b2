// GPU memory and utilisation for /metrics, read through NVML (NVIDIA's management library, the
// one nvidia-smi uses) at scrape time.
//
// libnvidia-ml.so.1 comes with the NVIDIA driver, not with a package we build against, so it is
// loaded at run time with dlopen/dlsym: the CPU build, CI and machines without a driver need no
// NVIDIA package, and there `Create` fails and the GPU series are simply absent. This is our own
// small loader because no Debian package offers a dlopen wrapper for NVML (NVIDIA's own nvml.h
// and stub library, in non-free, link the symbols at build time). It declares the six functions
// and two structs it uses itself, from NVML's public API reference:
//   nvmlInit_v2, nvmlShutdown, nvmlDeviceGetCount_v2, nvmlDeviceGetHandleByIndex_v2,
//   nvmlDeviceGetMemoryInfo (nvmlMemory_t {total, free, used}, bytes),
//   nvmlDeviceGetUtilizationRates (nvmlUtilization_t {gpu, memory}, percent over the driver's
//   last sample period).
//
// Checked against the real library on an H200 (driver's NVML, 2026-12-01): the declarations
// match, total = nvidia-smi's total, and v1's `used` includes the memory the driver reserves
// (about 615 MiB there, where nvidia-smi shows 0 MiB used), so an idle GPU is not at 0.
//
// Devices are labelled "cuda:N" with N = NVML's index, which is CUDA's index when
// CUDA_DEVICE_ORDER=PCI_BUS_ID and CUDA_VISIBLE_DEVICES is unset (the usual setup of a GPU node;
// NVML itself ignores CUDA_VISIBLE_DEVICES).
//
// Usage in main():
//   options.device_stats = ProcessAndGpuDeviceStats(NvmlDeviceStats::Create().value_or(nullptr));
#ifndef ATTUNE_SERVER_HTTP_NVML_DEVICE_STATS_H_
#define ATTUNE_SERVER_HTTP_NVML_DEVICE_STATS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/http/device_stats.h"

namespace attune::http {

class NvmlDeviceStats {
 public:
  // Loads `library` (a file name searched as dlopen does, or a path) and initialises NVML.
  // Returns NOT_FOUND when the library cannot be loaded or lacks one of the functions above
  // (a machine without the NVIDIA driver), UNAVAILABLE when nvmlInit_v2 fails (e.g. a driver
  // without a GPU it can reach); the message names the library and NVML's return code.
  static absl::StatusOr<std::unique_ptr<NvmlDeviceStats>> Create(
      const std::string& library = "libnvidia-ml.so.1");

  // Shuts NVML down and unloads the library.
  ~NvmlDeviceStats();

  NvmlDeviceStats(const NvmlDeviceStats&) = delete;
  NvmlDeviceStats& operator=(const NvmlDeviceStats&) = delete;

  // One entry per GPU NVML counts now, in index order, with used and total memory and, where the
  // GPU reports it, utilisation in [0, 1]. A GPU whose handle or memory cannot be read is left
  // out; an empty vector when the count fails. Thread-safe (NVML's calls are).
  std::vector<DeviceStats> Read() const;

  struct Api;  // the loaded functions (nvml_device_stats.cc)

 private:
  NvmlDeviceStats(void* handle, std::unique_ptr<const Api> api);

  // Constant after construction.
  void* const handle_;  // from dlopen; closed by the destructor
  const std::unique_ptr<const Api> api_;
};

// ProcessDeviceStats() (the "cpu" entry) followed by `gpus->Read()` when `gpus` is not null. The
// returned function shares ownership of `gpus`.
DeviceStatsFn ProcessAndGpuDeviceStats(std::shared_ptr<const NvmlDeviceStats> gpus);

}  // namespace attune::http

#endif  // ATTUNE_SERVER_HTTP_NVML_DEVICE_STATS_H_
