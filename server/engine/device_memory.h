// A job's GPU memory figures, from the CUDA caching allocator of its device. Internal to the
// engine.
//
// Only a CUDA LibTorch has the allocator's headers: the engine compiles the CUDA read where CMake
// finds the CUDA toolkit (ATTUNE_CUDA_STATS, server/engine/CMakeLists.txt), and on Debian's CPU
// LibTorch these functions do nothing and return nothing. The allocator is per process and its
// figures per device: they describe one job while no other job in the same process trains on
// that device (attuned --slots-per-device 1). Jobs sharing a device see each other's memory,
// and each job's start restarts the peak for both.
#ifndef ATTUNE_SERVER_ENGINE_DEVICE_MEMORY_H_
#define ATTUNE_SERVER_ENGINE_DEVICE_MEMORY_H_

#include <torch/torch.h>

#include <optional>

#include "common/metrics.h"

namespace attune::engine {

// Both functions need the CUDA allocator to exist, which it does once a tensor has been placed
// on a CUDA device (before that, LibTorch throws "Invalid device argument"): call them after the
// job's model is on its device. Seen on the H200 (LibTorch 2.11), this code in a test program:
// with 256 MiB in use, a peak reset, then 1 GiB allocated and freed, it read 256 MiB allocated
// and a 1.25 GiB peak.

// Allocated, reserved and peak allocated bytes of `device` now. nullopt on the CPU, and in a
// build without CUDA. Thread-safe.
std::optional<DeviceMemory> ReadDeviceMemory(const torch::Device& device);

// Restarts the peak (DeviceMemory::peak_allocated_bytes) at what is allocated now, so that it
// covers one job. Does nothing on the CPU or without CUDA. Thread-safe.
void ResetPeakDeviceMemory(const torch::Device& device);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_DEVICE_MEMORY_H_
