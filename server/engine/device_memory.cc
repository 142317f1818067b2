#include "server/engine/device_memory.h"

#if defined(ATTUNE_CUDA_STATS)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace attune::engine {

#if defined(ATTUNE_CUDA_STATS)

namespace {

namespace allocator = c10::cuda::CUDACachingAllocator;

c10::DeviceIndex IndexOf(const torch::Device& device) {
  return device.has_index() ? device.index() : 0;
}

}  // namespace

std::optional<DeviceMemory> ReadDeviceMemory(const torch::Device& device) {
  if (!device.is_cuda()) return std::nullopt;
  const auto stats = allocator::getDeviceStats(IndexOf(device));
  constexpr size_t kAll = 0;  // StatType::AGGREGATE: small and large pools together
  DeviceMemory memory;
  memory.allocated_bytes = stats.allocated_bytes[kAll].current;
  memory.reserved_bytes = stats.reserved_bytes[kAll].current;
  memory.peak_allocated_bytes = stats.allocated_bytes[kAll].peak;
  return memory;
}

void ResetPeakDeviceMemory(const torch::Device& device) {
  if (device.is_cuda()) allocator::resetPeakStats(IndexOf(device));
}

#else  // a CPU-only LibTorch: no CUDA allocator

std::optional<DeviceMemory> ReadDeviceMemory(const torch::Device&) { return std::nullopt; }

void ResetPeakDeviceMemory(const torch::Device&) {}

#endif  // ATTUNE_CUDA_STATS

}  // namespace attune::engine
