#include "server/http/service_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/http/fake_jobs_source.h"
#include "server/http/nvml_device_stats.h"

namespace attune::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFakeNvml[] = ATTUNE_FAKE_NVML;  // testdata/fake_nvml.cc, loaded as NVML

JobView Job(const std::string& id, const std::string& state) {
  JobView job;
  job.id = id;
  job.name = "name-" + id;
  job.state = state;
  job.devices = {"cpu"};
  return job;
}

StepMetrics Step(int64_t step, double loss) {
  StepMetrics m;
  m.step = step;
  m.total_steps = 100;
  m.epoch = step / 50.0;
  m.train_loss = loss;
  m.learning_rates = {{"q.lora_A", 1e-4}, {"v.lora_A", 4e-4}};
  m.grad_norm = 0.5;
  m.tokens_per_second = 1234;
  m.samples_per_second = 16;
  return m;
}

TEST(CollectServiceFamiliesTest, CountsEveryKnownStateAndTheQueue) {
  ServiceStats stats;
  stats.jobs_by_state = {{"RUNNING", 1}, {"QUEUED", 2}};
  stats.queue_length = 2;
  auto families = CollectServiceFamilies(stats, {}, 0);
  ASSERT_GE(families.size(), 2u);
  EXPECT_EQ(families[0].name, "attune_jobs");
  // cancelled, failed, paused, queued, running, succeeded
  ASSERT_EQ(families[0].metric.size(), 6u);
  EXPECT_EQ(families[0].metric[2].label[0].value, "paused");
  EXPECT_EQ(families[0].metric[2].gauge.value, 0);
  EXPECT_EQ(families[0].metric[3].label[0].value, "queued");
  EXPECT_EQ(families[0].metric[3].gauge.value, 2);
  EXPECT_EQ(families[0].metric[0].label[0].value, "cancelled");
  EXPECT_EQ(families[0].metric[0].gauge.value, 0);
  EXPECT_EQ(families[1].name, "attune_queue_length");
  EXPECT_EQ(families[1].metric[0].gauge.value, 2);
}

TEST(ServiceMetricsTest, ScrapeShowsRunningJobAndDropsItWhenFinished) {
  FakeJobsSource source;
  source.PutJob(Job("j1", "RUNNING"));
  source.PutJob(Job("j2", "QUEUED"));
  source.AddStep("j1", Step(7, 0.6931));
  EvalMetrics eval;
  eval.step = 5;
  eval.loss = 0.5;
  source.AddEval("j1", eval);
  ServiceMetrics metrics(&source, {});
  metrics.AddCheckpointBytes(1000);  // ignored: the fake source counts checkpoint bytes itself
  source.SetCheckpointBytes(2048);

  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("attune_jobs{state=\"running\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("attune_jobs{state=\"queued\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("attune_queue_length 1\n"));
  EXPECT_THAT(text, HasSubstr("attune_job_step{job_id=\"j1\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("attune_job_total_steps{job_id=\"j1\"} 100\n"));
  EXPECT_THAT(text, HasSubstr("attune_job_train_loss{job_id=\"j1\"} 0.6931\n"));
  EXPECT_THAT(text, HasSubstr("attune_job_eval_loss{job_id=\"j1\"} 0.5\n"));
  EXPECT_THAT(text,
              HasSubstr("attune_job_learning_rate{group=\"v.lora_A\",job_id=\"j1\"} 0.0004\n"));
  EXPECT_THAT(text, HasSubstr("attune_job_tokens_per_second{job_id=\"j1\"} 1234\n"));
  EXPECT_THAT(text, HasSubstr("attune_job_samples_per_second{job_id=\"j1\"} 16\n"));
  EXPECT_THAT(text, HasSubstr("attune_checkpoint_written_bytes_total 2048\n"));
  EXPECT_THAT(text, Not(HasSubstr("job_id=\"j2\"")));  // queued jobs have no per-job series

  source.SetState("j1", "SUCCEEDED");
  const std::string after = metrics.Scrape();
  EXPECT_THAT(after, Not(HasSubstr("job_id=\"j1\"")));
  EXPECT_THAT(after, HasSubstr("attune_jobs{state=\"succeeded\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("attune_jobs{state=\"running\"} 0\n"));
}

// A running job's bytes on disk as its source measured them; none where it could not.
TEST(CollectServiceFamiliesTest, ArtifactBytesOfRunningJobsThatHaveThem) {
  ServiceStats stats;
  RunningJobStats measured;
  measured.id = "j1";
  measured.artifact_bytes = 123456;
  RunningJobStats unknown;
  unknown.id = "j2";
  stats.running = {unknown, measured};
  const std::vector<prometheus::MetricFamily> families = CollectServiceFamilies(stats, {}, 0);
  const prometheus::MetricFamily* artifact = nullptr;
  for (const prometheus::MetricFamily& family : families) {
    if (family.name == "attune_job_artifact_bytes") artifact = &family;
  }
  ASSERT_NE(artifact, nullptr);
  EXPECT_EQ(artifact->type, prometheus::MetricType::Gauge);
  ASSERT_EQ(artifact->metric.size(), 1u);
  ASSERT_EQ(artifact->metric[0].label.size(), 1u);
  EXPECT_EQ(artifact->metric[0].label[0].name, "job_id");
  EXPECT_EQ(artifact->metric[0].label[0].value, "j1");
  EXPECT_DOUBLE_EQ(artifact->metric[0].gauge.value, 123456);
}

// attuned's device series (ProcessAndGpuDeviceStats over NVML, as server/main.cc builds them)
// with the fake NVML: the cpu entry and the two GPUs that answer, exactly.
TEST(ServiceMetricsTest, ScrapeShowsEveryGpuNvmlReports) {
  FakeJobsSource source;
  ServiceMetrics::Options options;
  options.device_stats =
      ProcessAndGpuDeviceStats(NvmlDeviceStats::Create(kFakeNvml).value_or(nullptr));
  ServiceMetrics metrics(&source, options);

  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("attune_device_memory_used_bytes{device=\"cpu\"} "));
  EXPECT_THAT(text, HasSubstr("attune_device_memory_used_bytes{device=\"cuda:0\"} 3221225472\n"));
  EXPECT_THAT(text, HasSubstr("attune_device_memory_total_bytes{device=\"cuda:0\"} 85899345920\n"));
  EXPECT_THAT(text, HasSubstr("attune_device_utilization_ratio{device=\"cuda:0\"} 0.37\n"));
  EXPECT_THAT(text, HasSubstr("attune_device_memory_used_bytes{device=\"cuda:1\"} 1073741824\n"));
  EXPECT_THAT(text, HasSubstr("attune_device_memory_total_bytes{device=\"cuda:1\"} 85899345920\n"));
  EXPECT_THAT(text, Not(HasSubstr("attune_device_utilization_ratio{device=\"cuda:1\"}")));
  EXPECT_THAT(text, Not(HasSubstr("cuda:2")));  // the lost GPU: absent, not zero
}

// Without NVML (no driver) the GPU series are absent, not zero; the cpu series and the families'
// declarations stay.
TEST(ServiceMetricsTest, NoNvmlMeansNoGpuSeries) {
  FakeJobsSource source;
  ServiceMetrics::Options options;
  options.device_stats = ProcessAndGpuDeviceStats(
      NvmlDeviceStats::Create("/nonexistent/libnvidia-ml.so.1").value_or(nullptr));
  ServiceMetrics metrics(&source, options);

  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, Not(HasSubstr("cuda:")));
  EXPECT_THAT(text, HasSubstr("attune_device_memory_used_bytes{device=\"cpu\"} "));
  EXPECT_THAT(text, HasSubstr("# TYPE attune_device_utilization_ratio gauge\n"));
  EXPECT_THAT(text, Not(HasSubstr("attune_device_utilization_ratio{")));
}

// The caching allocator's figures (StepMetrics::device_memory, filled by the engine on CUDA)
// become per-job series; a job without them (the CPU) has none.
TEST(ServiceMetricsTest, JobDeviceMemoryOnlyWhenReported) {
  FakeJobsSource source;
  JobView gpu_job = Job("g1", "RUNNING");
  gpu_job.devices = {"cuda:1"};
  source.PutJob(gpu_job);
  source.PutJob(Job("c1", "RUNNING"));
  StepMetrics step = Step(3, 0.5);
  step.device_memory = DeviceMemory{1000, 4096, 2000};
  source.AddStep("g1", step);
  source.AddStep("c1", Step(3, 0.5));
  ServiceMetrics metrics(&source, {});

  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("attune_job_device_memory_allocated_bytes{device=\"cuda:1\","
                              "job_id=\"g1\"} 1000\n"));
  EXPECT_THAT(text, HasSubstr("attune_job_device_memory_reserved_bytes{device=\"cuda:1\","
                              "job_id=\"g1\"} 4096\n"));
  EXPECT_THAT(text, HasSubstr("attune_job_device_memory_peak_allocated_bytes{device=\"cuda:1\","
                              "job_id=\"g1\"} 2000\n"));
  EXPECT_THAT(text, HasSubstr("attune_job_step{job_id=\"c1\"} 3\n"));
  EXPECT_THAT(text, Not(HasSubstr("job_id=\"c1\"} 4096")));
  EXPECT_THAT(text, Not(HasSubstr("device=\"cpu\",job_id=\"c1\"")));
}

TEST(ServiceMetricsTest, CheckpointCounterFedByCallsWhenSourceDoesNotCount) {
  FakeJobsSource source;  // checkpoint bytes unknown (-1)
  ServiceMetrics metrics(&source, {});
  metrics.AddCheckpointBytes(300);
  metrics.AddCheckpointBytes(-5);
  metrics.AddCheckpointBytes(700);
  EXPECT_THAT(metrics.Scrape(), HasSubstr("attune_checkpoint_written_bytes_total 1000\n"));
}

TEST(ServiceMetricsTest, DefaultDeviceStatsReportCpuResidentMemory) {
  const std::vector<DeviceStats> devices = ProcessDeviceStats();
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].device, "cpu");
  EXPECT_GT(devices[0].memory_used_bytes, 1 << 20);  // a test binary uses more than 1 MiB
  ASSERT_TRUE(devices[0].memory_total_bytes.has_value());
  EXPECT_GT(*devices[0].memory_total_bytes, devices[0].memory_used_bytes);
}

}  // namespace
}  // namespace attune::http
