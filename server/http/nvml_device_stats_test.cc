// NvmlDeviceStats against fake_nvml (testdata/fake_nvml.cc), a shared library with NVML's
// functions and fixed numbers, loaded by path as attuned loads libnvidia-ml.so.1.
#include "server/http/nvml_device_stats.h"

#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace attune::http {
namespace {

using ::testing::HasSubstr;

constexpr char kFakeNvml[] = ATTUNE_FAKE_NVML;  // path of libfake_nvml.so
constexpr int64_t kGiB = int64_t{1} << 30;

// The fake's test controls, reached through the same (reference-counted) dlopen handle.
class FakeNvml {
 public:
  FakeNvml() : handle_(dlopen(kFakeNvml, RTLD_NOW | RTLD_LOCAL)) {
    EXPECT_NE(handle_, nullptr) << dlerror();
  }
  ~FakeNvml() {
    SetInitResult(0);
    dlclose(handle_);
  }
  void SetInitResult(int result) {
    reinterpret_cast<void (*)(int)>(dlsym(handle_, "fake_nvml_set_init_result"))(result);
  }
  int LiveInits() { return reinterpret_cast<int (*)()>(dlsym(handle_, "fake_nvml_live_inits"))(); }

 private:
  void* const handle_;
};

TEST(NvmlDeviceStatsTest, ReadsEveryGpuThatAnswersAndLeavesOutTheLostOne) {
  absl::StatusOr<std::unique_ptr<NvmlDeviceStats>> nvml = NvmlDeviceStats::Create(kFakeNvml);
  ASSERT_TRUE(nvml.ok()) << nvml.status();
  const std::vector<DeviceStats> gpus = (*nvml)->Read();
  ASSERT_EQ(gpus.size(), 2u);  // index 2 fails nvmlDeviceGetMemoryInfo
  EXPECT_EQ(gpus[0].device, "cuda:0");
  EXPECT_EQ(gpus[0].memory_used_bytes, 3 * kGiB);
  EXPECT_EQ(gpus[0].memory_total_bytes, 80 * kGiB);
  EXPECT_EQ(gpus[0].utilization, 0.37);
  EXPECT_EQ(gpus[1].device, "cuda:1");
  EXPECT_EQ(gpus[1].memory_used_bytes, 1 * kGiB);
  EXPECT_EQ(gpus[1].memory_total_bytes, 80 * kGiB);
  EXPECT_EQ(gpus[1].utilization, std::nullopt);  // NVML_ERROR_NOT_SUPPORTED
}

TEST(NvmlDeviceStatsTest, ShutsNvmlDownWhenDestroyed) {
  FakeNvml fake;
  {
    absl::StatusOr<std::unique_ptr<NvmlDeviceStats>> nvml = NvmlDeviceStats::Create(kFakeNvml);
    ASSERT_TRUE(nvml.ok()) << nvml.status();
    EXPECT_EQ(fake.LiveInits(), 1);
  }
  EXPECT_EQ(fake.LiveInits(), 0);
}

TEST(NvmlDeviceStatsTest, MissingLibraryIsNotFound) {
  absl::StatusOr<std::unique_ptr<NvmlDeviceStats>> nvml =
      NvmlDeviceStats::Create("/nonexistent/libnvidia-ml.so.1");
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(nvml.status().message(),
              HasSubstr("cannot load NVML library '/nonexistent/libnvidia-ml.so.1'"));
}

TEST(NvmlDeviceStatsTest, LibraryWithoutNvmlFunctionsIsNotFound) {
  absl::StatusOr<std::unique_ptr<NvmlDeviceStats>> nvml = NvmlDeviceStats::Create("libm.so.6");
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(nvml.status().message(), HasSubstr("'libm.so.6' has no nvml"));
}

TEST(NvmlDeviceStatsTest, FailingInitIsUnavailable) {
  FakeNvml fake;
  fake.SetInitResult(9);  // NVML_ERROR_DRIVER_NOT_LOADED
  absl::StatusOr<std::unique_ptr<NvmlDeviceStats>> nvml = NvmlDeviceStats::Create(kFakeNvml);
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(nvml.status().message(), HasSubstr("nvmlInit_v2 of '"));
  EXPECT_THAT(nvml.status().message(), HasSubstr("' returned 9; expected 0 (success)"));
  EXPECT_EQ(fake.LiveInits(), 0);
}

TEST(ProcessAndGpuDeviceStatsTest, CpuFirstThenGpus) {
  absl::StatusOr<std::unique_ptr<NvmlDeviceStats>> nvml = NvmlDeviceStats::Create(kFakeNvml);
  ASSERT_TRUE(nvml.ok()) << nvml.status();
  const std::vector<DeviceStats> devices = ProcessAndGpuDeviceStats(std::move(*nvml))();
  ASSERT_EQ(devices.size(), 3u);
  EXPECT_EQ(devices[0].device, "cpu");
  EXPECT_EQ(devices[1].device, "cuda:0");
  EXPECT_EQ(devices[2].device, "cuda:1");

  const std::vector<DeviceStats> cpu_only = ProcessAndGpuDeviceStats(nullptr)();
  ASSERT_EQ(cpu_only.size(), 1u);
  EXPECT_EQ(cpu_only[0].device, "cpu");
}

}  // namespace
}  // namespace attune::http
