// A stand-in for libnvidia-ml.so.1 with fixed numbers, for nvml_device_stats_test: built as the
// shared library fake_nvml and loaded by path, it exports the NVML functions NvmlDeviceStats
// uses with NVML's C signatures (integers in place of NVML's enum and structs of the same
// layout), plus two test controls. Three GPUs:
//   index 0: 80 GiB total, 3 GiB used, utilisation 37 % (memory 12 %)
//   index 1: 80 GiB total, 1 GiB used, utilisation not supported (NVML_ERROR_NOT_SUPPORTED = 3)
//   index 2: lost (NVML_ERROR_GPU_IS_LOST = 15 from nvmlDeviceGetMemoryInfo)
// Not thread-safe; the test is single-threaded.
namespace {

struct Memory {
  unsigned long long total, free, used;
};
struct Utilization {
  unsigned int gpu, memory;
};
struct Gpu {
  int memory_result;
  Memory memory;
  int utilization_result;
  Utilization utilization;
};

constexpr unsigned long long kGiB = 1ull << 30;
Gpu gpus[] = {
    {0, {80 * kGiB, 77 * kGiB, 3 * kGiB}, 0, {37, 12}},
    {0, {80 * kGiB, 79 * kGiB, 1 * kGiB}, 3, {0, 0}},
    {15, {0, 0, 0}, 15, {0, 0}},
};
int init_result = 0;
int live_inits = 0;  // nvmlInit_v2 successes minus nvmlShutdown calls

Gpu* Find(void* device) {
  for (Gpu& gpu : gpus) {
    if (device == &gpu) return &gpu;
  }
  return nullptr;
}

}  // namespace

extern "C" {

// Test controls: what nvmlInit_v2 returns from now on, and how many inits are not shut down.
void fake_nvml_set_init_result(int result) { init_result = result; }
int fake_nvml_live_inits() { return live_inits; }

int nvmlInit_v2() {
  if (init_result == 0) ++live_inits;
  return init_result;
}

int nvmlShutdown() {
  --live_inits;
  return 0;
}

int nvmlDeviceGetCount_v2(unsigned int* count) {
  if (live_inits <= 0) return 1;  // NVML_ERROR_UNINITIALIZED
  *count = sizeof(gpus) / sizeof(gpus[0]);
  return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (index >= sizeof(gpus) / sizeof(gpus[0])) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  *device = &gpus[index];
  return 0;
}

int nvmlDeviceGetMemoryInfo(void* device, Memory* memory) {
  Gpu* gpu = Find(device);
  if (gpu == nullptr) return 2;
  if (gpu->memory_result == 0) *memory = gpu->memory;
  return gpu->memory_result;
}

int nvmlDeviceGetUtilizationRates(void* device, Utilization* utilization) {
  Gpu* gpu = Find(device);
  if (gpu == nullptr) return 2;
  if (gpu->utilization_result == 0) *utilization = gpu->utilization;
  return gpu->utilization_result;
}

}  // extern "C"
