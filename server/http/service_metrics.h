// attune's Prometheus metrics: the registry that /metrics serializes, and the collector that reads
// the job service at scrape time.
//
// Job counts, queue length and each running job's latest step metrics are not pushed into
// prometheus-cpp gauges by the training loop: they are read from `JobsSource::Stats()` when
// Prometheus scrapes, so training pays nothing for metrics and a finished job's per-job series
// disappear on the next scrape (bounded label sets). Event-like numbers that have no snapshot
// (gRPC requests, see server/api/grpc_metrics.h) live as ordinary prometheus-cpp families in
// `registry()`.
//
// Exposed series (all names start with attune_). Every family is always declared (# HELP and
// # TYPE lines); a series is absent, never zero, where its number is not known:
//   attune_jobs{state}                               gauge, jobs in each state
//   attune_queue_length                              gauge, jobs waiting for a device
//   attune_job_step{job_id}                          gauge, steps taken
//   attune_job_total_steps{job_id}                   gauge
//   attune_job_epoch{job_id}                         gauge, fractional epoch
//   attune_job_train_loss{job_id}                    gauge, latest step's batch loss
//   attune_job_eval_loss{job_id}                     gauge, latest validation loss
//   attune_job_learning_rate{job_id,group}           gauge, per optimizer parameter group
//   attune_job_grad_norm{job_id}                     gauge, before clipping
//   attune_job_tokens_per_second{job_id}             gauge
//   attune_job_samples_per_second{job_id}            gauge
//   attune_job_artifact_bytes{job_id}                gauge, bytes under the job's directory
//                                                    (checkpoints), measured at scrape time
//   attune_job_device_memory_allocated_bytes{job_id,device}       gauge, CUDA jobs only: the
//   attune_job_device_memory_reserved_bytes{job_id,device}        caching allocator's figures
//   attune_job_device_memory_peak_allocated_bytes{job_id,device}  after the latest step
//   attune_device_memory_used_bytes{device}          gauge; "cpu" = this process's resident memory,
//                                                    "cuda:N" = the GPU's (NVML), every process's
//   attune_device_memory_total_bytes{device}         gauge
//   attune_device_utilization_ratio{device}          gauge in [0, 1], GPUs that report it (NVML)
//   attune_checkpoint_written_bytes_total            counter
// The cuda:N device series come from NvmlDeviceStats (nvml_device_stats.h) and are absent on a
// machine without NVML.
#ifndef ATTUNE_SERVER_HTTP_SERVICE_METRICS_H_
#define ATTUNE_SERVER_HTTP_SERVICE_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "server/http/device_stats.h"
#include "server/http/jobs_source.h"

namespace attune::http {

// {"cpu": resident set size of this process from /proc/self/statm, total = physical memory}.
// Never fails; reports 0 bytes used when /proc cannot be read.
std::vector<DeviceStats> ProcessDeviceStats();

// Builds the metric families for one snapshot. A pure function: the same inputs give the same
// families (sorted by job id and group), which the tests rely on. `checkpoint_bytes` is the
// counter's value.
std::vector<prometheus::MetricFamily> CollectServiceFamilies(
    const ServiceStats& stats, const std::vector<DeviceStats>& devices, int64_t checkpoint_bytes);

class ServiceMetrics {
 public:
  struct Options {
    // The CPU only by default; attuned adds the GPUs (ProcessAndGpuDeviceStats in
    // nvml_device_stats.h). Empty = no device series.
    DeviceStatsFn device_stats = ProcessDeviceStats;
  };

  // `source` is not owned and must outlive the returned object.
  ServiceMetrics(JobsSource* source, Options options);

  // The registry for event-like families (e.g. the gRPC interceptor's). Thread-safe (as
  // prometheus::Registry is); valid for the lifetime of this object.
  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> shared_registry() { return registry_; }

  // Adds to attune_checkpoint_written_bytes_total when the source does not count checkpoint
  // bytes itself. Thread-safe; negative values are ignored.
  void AddCheckpointBytes(int64_t bytes);

  // Reads the source and the registry now and returns the Prometheus text exposition format
  // (version 0.0.4). With `visible`, the per-job series of running jobs it returns false for are
  // left out (another tenant's jobs). Thread-safe.
  using JobFilter = std::function<bool(const std::string& job_id)>;
  std::string Scrape(const JobFilter& visible = nullptr);

 private:
  // Constant after construction.
  JobsSource* const source_;
  const Options options_;
  const std::shared_ptr<prometheus::Registry> registry_;

  std::atomic<int64_t> checkpoint_bytes_{0};
};

}  // namespace attune::http

#endif  // ATTUNE_SERVER_HTTP_SERVICE_METRICS_H_
