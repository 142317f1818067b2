#include "server/http/nvml_device_stats.h"

#include <dlfcn.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/http/service_metrics.h"

namespace attune::http {
namespace {

// The few NVML declarations we use, as NVML's API reference gives them (nvml.h).
using NvmlReturn = int;  // nvmlReturn_t, an enum; 0 = NVML_SUCCESS
constexpr NvmlReturn kNvmlSuccess = 0;
using NvmlDevice = struct NvmlDeviceOpaque*;  // nvmlDevice_t
struct NvmlMemory {                           // nvmlMemory_t (v1)
  unsigned long long total;                   // bytes
  unsigned long long free;
  unsigned long long used;
};
struct NvmlUtilization {  // nvmlUtilization_t
  unsigned int gpu;       // percent of the sample period a kernel ran
  unsigned int memory;    // percent of the sample period memory was read or written
};

}  // namespace

struct NvmlDeviceStats::Api {
  NvmlReturn (*init)();
  NvmlReturn (*shutdown)();
  NvmlReturn (*device_count)(unsigned int*);
  NvmlReturn (*device_handle)(unsigned int, NvmlDevice*);
  NvmlReturn (*memory_info)(NvmlDevice, NvmlMemory*);
  NvmlReturn (*utilization)(NvmlDevice, NvmlUtilization*);
};

namespace {

// Looks `name` up in `handle` into `*fn`; false when the library lacks it.
template <typename Fn>
bool Bind(void* handle, const char* name, Fn* fn) {
  *fn = reinterpret_cast<Fn>(dlsym(handle, name));
  return *fn != nullptr;
}

// Every function of Api, or the name of the first one missing.
absl::StatusOr<NvmlDeviceStats::Api> BindApi(void* handle, const std::string& library) {
  NvmlDeviceStats::Api api{};
  const char* missing = nullptr;
  if (!Bind(handle, "nvmlInit_v2", &api.init)) missing = "nvmlInit_v2";
  if (!Bind(handle, "nvmlShutdown", &api.shutdown)) missing = "nvmlShutdown";
  if (!Bind(handle, "nvmlDeviceGetCount_v2", &api.device_count)) missing = "nvmlDeviceGetCount_v2";
  if (!Bind(handle, "nvmlDeviceGetHandleByIndex_v2", &api.device_handle)) {
    missing = "nvmlDeviceGetHandleByIndex_v2";
  }
  if (!Bind(handle, "nvmlDeviceGetMemoryInfo", &api.memory_info)) {
    missing = "nvmlDeviceGetMemoryInfo";
  }
  if (!Bind(handle, "nvmlDeviceGetUtilizationRates", &api.utilization)) {
    missing = "nvmlDeviceGetUtilizationRates";
  }
  if (missing != nullptr) {
    return absl::NotFoundError(absl::StrCat("NVML library '", library, "' has no ", missing));
  }
  return api;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NvmlDeviceStats>> NvmlDeviceStats::Create(
    const std::string& library) {
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return absl::NotFoundError(absl::StrCat("cannot load NVML library '", library,
                                            "': ", why != nullptr ? why : "unknown error"));
  }
  absl::StatusOr<Api> api = BindApi(handle, library);
  if (!api.ok()) {
    dlclose(handle);
    return api.status();
  }
  const NvmlReturn init = api->init();
  if (init != kNvmlSuccess) {
    dlclose(handle);
    return absl::UnavailableError(
        absl::StrCat("nvmlInit_v2 of '", library, "' returned ", init, "; expected 0 (success)"));
  }
  return std::unique_ptr<NvmlDeviceStats>(
      new NvmlDeviceStats(handle, std::make_unique<const Api>(*api)));
}

NvmlDeviceStats::NvmlDeviceStats(void* handle, std::unique_ptr<const Api> api)
    : handle_(handle), api_(std::move(api)) {}

NvmlDeviceStats::~NvmlDeviceStats() {
  api_->shutdown();
  dlclose(handle_);
}

std::vector<DeviceStats> NvmlDeviceStats::Read() const {
  std::vector<DeviceStats> out;
  unsigned int count = 0;
  if (api_->device_count(&count) != kNvmlSuccess) return out;
  for (unsigned int i = 0; i < count; ++i) {
    NvmlDevice device = nullptr;
    NvmlMemory memory{};
    if (api_->device_handle(i, &device) != kNvmlSuccess ||
        api_->memory_info(device, &memory) != kNvmlSuccess) {
      continue;
    }
    DeviceStats stats;
    stats.device = absl::StrCat("cuda:", i);
    stats.memory_used_bytes = static_cast<int64_t>(memory.used);
    stats.memory_total_bytes = static_cast<int64_t>(memory.total);
    NvmlUtilization utilization{};
    if (api_->utilization(device, &utilization) == kNvmlSuccess) {
      stats.utilization = utilization.gpu / 100.0;
    }
    out.push_back(std::move(stats));
  }
  return out;
}

DeviceStatsFn ProcessAndGpuDeviceStats(std::shared_ptr<const NvmlDeviceStats> gpus) {
  return [gpus = std::move(gpus)] {
    std::vector<DeviceStats> devices = ProcessDeviceStats();
    if (gpus != nullptr) {
      std::vector<DeviceStats> read = gpus->Read();
      devices.insert(devices.end(), read.begin(), read.end());
    }
    return devices;
  };
}

}  // namespace attune::http
