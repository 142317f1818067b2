// A job's GPU memory figures, from the CUDA caching allocator of its device. Internal to the
// engine.
//
// Only a CUDA LibTorch has the allocator's headers: the engine compiles the CUDA read where CMake
// finds the CUDA toolkit (ATTUNE_CUDA_STATS, server/engine/CMakeLists.txt), and on Debian's CPU
// LibTorch these functions do nothing and return nothing. The allocator is per process and its
// figures per device: they describe one job when the job's process has the device to itself.
#ifndef ATTUNE_SERVER_ENGINE_DEVICE_MEMORY_H_
#define ATTUNE_SERVER_ENGINE_DEVICE_MEMORY_H_

#include <torch/torch.h>

#include <optional>

#include "common/metrics.h"

namespace attune::engine {

// Allocated, reserved and peak allocated bytes of `device` now. nullopt on the CPU, and in a
// build without CUDA. Thread-safe.
std::optional<DeviceMemory> ReadDeviceMemory(const torch::Device& device);

// Restarts the peak (DeviceMemory::peak_allocated_bytes) at what is allocated now, so that it
// covers one job. Does nothing on the CPU or without CUDA. Thread-safe.
void ResetPeakDeviceMemory(const torch::Device& device);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_DEVICE_MEMORY_H_
