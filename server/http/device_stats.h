// What /metrics reports about one device (the CPU process or a GPU), and the function type that
// reads it at scrape time. Its own header so the readers (service_metrics.h for the CPU,
// nvml_device_stats.h for NVIDIA GPUs) and the collector share it without including each other.
#ifndef ATTUNE_SERVER_HTTP_DEVICE_STATS_H_
#define ATTUNE_SERVER_HTTP_DEVICE_STATS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace attune::http {

// Memory (and, where the platform tells, utilisation) of one device.
struct DeviceStats {
  std::string device;             // "cpu", "cuda:0", ...
  int64_t memory_used_bytes = 0;  // for "cpu": this process's resident memory
  std::optional<int64_t> memory_total_bytes;
  std::optional<double> utilization;  // in [0, 1]
};

// Called at scrape time, possibly from several request threads at once; must be thread-safe and
// cheap. Devices that cannot be read are left out (no series), never reported as zero.
using DeviceStatsFn = std::function<std::vector<DeviceStats>()>;

}  // namespace attune::http

#endif  // ATTUNE_SERVER_HTTP_DEVICE_STATS_H_
