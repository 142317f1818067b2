#include "server/http/service_metrics.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "prometheus/text_serializer.h"

namespace attune::http {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// States that always get a series (0 when empty), so dashboards see a stable set.
const char* const kKnownStates[] = {"QUEUED", "RUNNING",   "SUCCEEDED",
                                    "FAILED", "CANCELLED", "PAUSED"};

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddGauge(MetricFamily& family, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
}

// Per-running-job gauges, one family per quantity.
void AddRunningJobFamilies(const std::vector<RunningJobStats>& running,
                           std::vector<MetricFamily>& out) {
  std::vector<const RunningJobStats*> jobs;
  for (const auto& job : running) jobs.push_back(&job);
  std::sort(jobs.begin(), jobs.end(),
            [](const RunningJobStats* a, const RunningJobStats* b) { return a->id < b->id; });

  auto step =
      Family("attune_job_step", "Optimizer steps taken by a running job.", MetricType::Gauge);
  auto total =
      Family("attune_job_total_steps", "Steps a running job will take in all.", MetricType::Gauge);
  auto epoch = Family("attune_job_epoch", "Fractional epoch of a running job.", MetricType::Gauge);
  auto train_loss =
      Family("attune_job_train_loss", "Mean training loss of a running job's latest batch.",
             MetricType::Gauge);
  auto eval_loss =
      Family("attune_job_eval_loss", "Validation loss of a running job's latest evaluation.",
             MetricType::Gauge);
  auto lr = Family("attune_job_learning_rate",
                   "Learning rate of each optimizer parameter group of a running job.",
                   MetricType::Gauge);
  auto grad_norm =
      Family("attune_job_grad_norm", "Global gradient L2 norm before clipping, latest step.",
             MetricType::Gauge);
  auto tokens =
      Family("attune_job_tokens_per_second",
             "Non-padding tokens per second of a running job's latest step.", MetricType::Gauge);
  auto samples = Family("attune_job_samples_per_second",
                        "Examples per second of a running job's latest step.", MetricType::Gauge);

  for (const RunningJobStats* job : jobs) {
    const std::vector<ClientMetric::Label> labels = {{"job_id", job->id}};
    if (job->eval_loss) AddGauge(eval_loss, labels, *job->eval_loss);
    if (!job->step) continue;
    const StepMetrics& m = *job->step;
    AddGauge(step, labels, static_cast<double>(m.step));
    AddGauge(total, labels, static_cast<double>(m.total_steps));
    AddGauge(epoch, labels, m.epoch);
    AddGauge(train_loss, labels, m.train_loss);
    AddGauge(grad_norm, labels, m.grad_norm);
    AddGauge(tokens, labels, m.tokens_per_second);
    AddGauge(samples, labels, m.samples_per_second);
    for (const auto& [group, rate] : m.learning_rates) {  // std::map: sorted by group
      AddGauge(lr, {{"group", group}, {"job_id", job->id}}, rate);
    }
  }
  for (auto* family :
       {&step, &total, &epoch, &train_loss, &eval_loss, &lr, &grad_norm, &tokens, &samples}) {
    out.push_back(std::move(*family));
  }
}

// Each running job's bytes on disk, where its source measured them.
void AddArtifactBytesFamily(const std::vector<RunningJobStats>& running,
                            std::vector<MetricFamily>& out) {
  std::vector<const RunningJobStats*> jobs;
  for (const auto& job : running) {
    if (job.artifact_bytes) jobs.push_back(&job);
  }
  std::sort(jobs.begin(), jobs.end(),
            [](const RunningJobStats* a, const RunningJobStats* b) { return a->id < b->id; });
  auto bytes = Family("attune_job_artifact_bytes",
                      "Bytes of the files under a running job's directory (its checkpoints).",
                      MetricType::Gauge);
  for (const RunningJobStats* job : jobs) {
    AddGauge(bytes, {{"job_id", job->id}}, static_cast<double>(*job->artifact_bytes));
  }
  out.push_back(std::move(bytes));
}

// The CUDA caching allocator's figures of running jobs that report them (none on the CPU).
void AddJobDeviceMemoryFamilies(const std::vector<RunningJobStats>& running,
                                std::vector<MetricFamily>& out) {
  std::vector<const RunningJobStats*> jobs;
  for (const auto& job : running) {
    if (job.step && job.step->device_memory) jobs.push_back(&job);
  }
  std::sort(jobs.begin(), jobs.end(),
            [](const RunningJobStats* a, const RunningJobStats* b) { return a->id < b->id; });
  auto allocated =
      Family("attune_job_device_memory_allocated_bytes",
             "Device memory held by a running job's live tensors after its latest step.",
             MetricType::Gauge);
  auto reserved = Family("attune_job_device_memory_reserved_bytes",
                         "Device memory a running job's caching allocator holds (allocated and "
                         "cached) after its latest step.",
                         MetricType::Gauge);
  auto peak =
      Family("attune_job_device_memory_peak_allocated_bytes",
             "The most device memory a running job's tensors held at once since it started.",
             MetricType::Gauge);
  for (const RunningJobStats* job : jobs) {
    const std::vector<ClientMetric::Label> labels = {{"device", job->device}, {"job_id", job->id}};
    const DeviceMemory& memory = *job->step->device_memory;
    AddGauge(allocated, labels, static_cast<double>(memory.allocated_bytes));
    AddGauge(reserved, labels, static_cast<double>(memory.reserved_bytes));
    AddGauge(peak, labels, static_cast<double>(memory.peak_allocated_bytes));
  }
  for (auto* family : {&allocated, &reserved, &peak}) out.push_back(std::move(*family));
}

void AddDeviceFamilies(const std::vector<DeviceStats>& devices, std::vector<MetricFamily>& out) {
  auto used = Family("attune_device_memory_used_bytes",
                     "Memory in use on a device (for cpu: the server's resident memory).",
                     MetricType::Gauge);
  auto total =
      Family("attune_device_memory_total_bytes", "Memory a device has in all.", MetricType::Gauge);
  auto util = Family("attune_device_utilization_ratio",
                     "Fraction of time a device was busy, from 0 to 1.", MetricType::Gauge);
  for (const DeviceStats& device : devices) {
    const std::vector<ClientMetric::Label> labels = {{"device", device.device}};
    AddGauge(used, labels, static_cast<double>(device.memory_used_bytes));
    if (device.memory_total_bytes) {
      AddGauge(total, labels, static_cast<double>(*device.memory_total_bytes));
    }
    if (device.utilization) AddGauge(util, labels, *device.utilization);
  }
  for (auto* family : {&used, &total, &util}) out.push_back(std::move(*family));
}

}  // namespace

std::vector<DeviceStats> ProcessDeviceStats() {
  DeviceStats cpu;
  cpu.device = "cpu";
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0;
  int64_t resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    cpu.memory_used_bytes = resident_pages * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
  }
  const long pages = sysconf(_SC_PHYS_PAGES);
  if (pages > 0) {
    cpu.memory_total_bytes = static_cast<int64_t>(pages) * sysconf(_SC_PAGESIZE);
  }
  return {cpu};
}

std::vector<MetricFamily> CollectServiceFamilies(const ServiceStats& stats,
                                                 const std::vector<DeviceStats>& devices,
                                                 int64_t checkpoint_bytes) {
  std::vector<MetricFamily> out;

  auto jobs = Family("attune_jobs", "Jobs known to the server, by state.", MetricType::Gauge);
  std::map<std::string, int64_t> by_state;
  for (const char* state : kKnownStates) by_state[state] = 0;
  for (const auto& [state, count] : stats.jobs_by_state) by_state[state] += count;
  for (const auto& [state, count] : by_state) {
    AddGauge(jobs, {{"state", absl::AsciiStrToLower(state)}}, static_cast<double>(count));
  }
  out.push_back(std::move(jobs));

  auto queue = Family("attune_queue_length", "Jobs waiting for a free device.", MetricType::Gauge);
  AddGauge(queue, {}, static_cast<double>(stats.queue_length));
  out.push_back(std::move(queue));

  AddRunningJobFamilies(stats.running, out);
  AddJobDeviceMemoryFamilies(stats.running, out);
  AddArtifactBytesFamily(stats.running, out);
  AddDeviceFamilies(devices, out);

  auto checkpoint =
      Family("attune_checkpoint_written_bytes_total",
             "Bytes of checkpoints written since the server started.", MetricType::Counter);
  ClientMetric written;
  written.counter.value = static_cast<double>(std::max<int64_t>(checkpoint_bytes, 0));
  checkpoint.metric.push_back(std::move(written));
  out.push_back(std::move(checkpoint));
  return out;
}

ServiceMetrics::ServiceMetrics(JobsSource* source, Options options)
    : source_(source),
      options_(std::move(options)),
      registry_(std::make_shared<prometheus::Registry>()) {}

void ServiceMetrics::AddCheckpointBytes(int64_t bytes) {
  if (bytes > 0) checkpoint_bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

std::string ServiceMetrics::Scrape(const JobFilter& visible) {
  ServiceStats stats = source_->Stats();
  if (visible) {
    std::vector<RunningJobStats> shown;
    for (RunningJobStats& job : stats.running) {
      if (visible(job.id)) shown.push_back(std::move(job));
    }
    stats.running = std::move(shown);
  }
  const std::vector<DeviceStats> devices =
      options_.device_stats ? options_.device_stats() : std::vector<DeviceStats>{};
  const int64_t checkpoint_bytes = stats.checkpoint_bytes_written >= 0
                                       ? stats.checkpoint_bytes_written
                                       : checkpoint_bytes_.load(std::memory_order_relaxed);
  std::vector<MetricFamily> families = CollectServiceFamilies(stats, devices, checkpoint_bytes);
  std::vector<MetricFamily> registered = registry_->Collect();
  families.insert(families.end(), std::make_move_iterator(registered.begin()),
                  std::make_move_iterator(registered.end()));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace attune::http
