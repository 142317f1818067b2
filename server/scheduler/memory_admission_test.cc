#include "server/scheduler/memory_admission.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace attune::scheduler {
namespace {

TEST(AvailableHostMemoryTest, ReadsMemAvailableInBytes) {
  const std::string path = ::testing::TempDir() + "/meminfo." + std::to_string(getpid());
  std::ofstream(path) << "MemTotal:       24000000 kB\nMemFree:         1000 kB\n"
                         "MemAvailable:   2000000 kB\nBuffers:  5 kB\n";
  EXPECT_EQ(AvailableHostMemory(path), int64_t{2000000} * 1024);
  std::ofstream(path, std::ios::trunc) << "MemTotal: 1 kB\n";
  EXPECT_EQ(AvailableHostMemory(path), std::nullopt);
  std::remove(path.c_str());
  EXPECT_EQ(AvailableHostMemory(path), std::nullopt);
  EXPECT_GT(AvailableHostMemory().value_or(0), 0);  // this machine's /proc/meminfo
}

TEST(AdmitMemoryTest, RefusesOnlyWhatDoesNotFit) {
  TrainSpec spec;
  spec.batch_size = 64;
  spec.max_seq_len = 512;
  EXPECT_TRUE(AdmitMemory(spec, 1000, 1000).ok());
  EXPECT_TRUE(AdmitMemory(spec, 0, 10).ok());               // not estimated
  EXPECT_TRUE(AdmitMemory(spec, 1000, std::nullopt).ok());  // device memory unknown
  absl::Status refused = AdmitMemory(spec, 3000000000, 2000000000);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.message(),
            "batch_size 64 x max_seq_len 512: training needs an estimated 3e+09 bytes (an upper "
            "bound) but the CPU has 2e+09 bytes available; lower batch_size or max_seq_len");
}

// A CPU job of N ranks loads N copies of the model: N times the estimate must fit.
TEST(AdmitMemoryTest, CpuRanksMultiplyTheEstimate) {
  TrainSpec spec;
  spec.batch_size = 16;
  spec.max_seq_len = 128;
  EXPECT_TRUE(AdmitMemory(spec, 1000, 2000, /*ranks=*/2).ok());
  absl::Status refused = AdmitMemory(spec, 1000, 2500, /*ranks=*/3);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.message(),
            "ranks 3 x batch_size 16 x max_seq_len 128: training needs an estimated 3e+03 bytes "
            "(an upper bound) but the CPU has 2.5e+03 bytes available; lower ranks, batch_size or "
            "max_seq_len");
  // No overflow: an estimate near the top of int64 times 64 ranks is refused, not wrapped.
  EXPECT_EQ(AdmitMemory(spec, int64_t{1} << 62, int64_t{1} << 62, 64).code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace attune::scheduler
