// The devices the scheduler hands out, and how many of each device's slots are in use.
//
// Devices are "cpu" and "cuda:N"; each has `slots_per_device` concurrent slots. A job that wants
// n GPUs gets n distinct GPUs with a free slot each, all at once, or nothing; a job that wants no
// GPU gets one slot on any device, a CPU first. Among equals, the least busy device wins, then the
// inventory order.
//
// Thread safety: not thread-safe; the scheduler guards it with its own mutex.
#ifndef ATTUNE_SERVER_SCHEDULER_DEVICE_INVENTORY_H_
#define ATTUNE_SERVER_SCHEDULER_DEVICE_INVENTORY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attune::scheduler {

class DeviceInventory {
 public:
  // INVALID_ARGUMENT naming the field for an empty list, an unknown or repeated device name, or
  // slots_per_device < 1.
  static absl::StatusOr<DeviceInventory> Create(const std::vector<std::string>& devices,
                                                int slots_per_device);

  // Takes slots for a job wanting `gpus` GPUs (0 = one slot anywhere) and returns their indices,
  // ascending; returns an empty vector, taking nothing, when the job cannot start now.
  std::vector<int> Acquire(int gpus);
  // Gives back slots returned by Acquire.
  void Release(const std::vector<int>& slots);

  const std::string& name(int slot) const { return devices_[slot].name; }
  int size() const { return static_cast<int>(devices_.size()); }
  int busy(int slot) const { return devices_[slot].busy; }
  int slots_per_device() const { return slots_per_device_; }
  int gpu_count() const;
  std::vector<std::string> names() const;

 private:
  struct Device {
    std::string name;
    bool is_gpu = false;
    int busy = 0;  // slots in use
  };
  DeviceInventory(std::vector<Device> devices, int slots_per_device)
      : devices_(std::move(devices)), slots_per_device_(slots_per_device) {}

  std::vector<Device> devices_;
  int slots_per_device_;
};

}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_DEVICE_INVENTORY_H_
