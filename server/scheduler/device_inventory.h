// The devices the scheduler hands out, and how many of each device's slots are in use.
//
// Devices are "cpu" and "cuda:N"; each has `slots_per_device` concurrent slots. A job that wants
// n GPUs gets n distinct GPUs with a free slot each, all at once, or nothing. A job that wants no
// GPU and runs one rank gets one slot on any device, a CPU first; one that runs N > 1 ranks
// (data-parallel processes) gets N CPU slots, all at once or nothing, several of them on one
// device when it has them free (never a GPU slot: the ranks of one job share one collective
// backend, Gloo on the CPU). Among equals, the least busy device wins, then the inventory order.
//
// A slot is named by its device's index, so a job holding two slots of "cpu" holds that index
// twice ({0, 0}); Release gives back one slot per entry.
//
// Thread safety: not thread-safe; the scheduler guards it with its own mutex.
#ifndef ATTUNE_SERVER_SCHEDULER_DEVICE_INVENTORY_H_
#define ATTUNE_SERVER_SCHEDULER_DEVICE_INVENTORY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attune::scheduler {

// A device slot on another machine, filled by an attune-worker that joins over TCP (attuned
// --worker-listen); list it after the local devices. Only ranks above 0 of a job of several
// ranks take one.
inline constexpr char kRemoteCpu[] = "remote-cpu";

class DeviceInventory {
 public:
  // INVALID_ARGUMENT naming the field for an empty list, an unknown or repeated device name, or
  // slots_per_device < 1.
  static absl::StatusOr<DeviceInventory> Create(const std::vector<std::string>& devices,
                                                int slots_per_device);

  // Takes slots for a job wanting `gpus` GPUs and `ranks` processes and returns their device
  // indices, ascending, one entry per slot (an index repeats when the job has several slots of
  // one device); returns an empty vector, taking nothing, when the job cannot start now. gpus > 0:
  // `gpus` distinct GPUs, one slot each (ranks is gpus then, and not read). gpus = 0: `ranks`
  // slots (ranks <= 1: one slot anywhere; ranks > 1: CPU slots only).
  std::vector<int> Acquire(int gpus, int ranks = 1);
  // Whether Acquire(gpus, ranks) would take slots now; takes nothing.
  bool CanAcquire(int gpus, int ranks = 1) const { return !Pick(gpus, ranks).empty(); }
  // Whether a job wanting `gpus` GPUs and `ranks` processes may use a slot of device `slot`.
  bool Suits(int slot, int gpus, int ranks = 1) const;
  // Gives back slots returned by Acquire, one per entry.
  void Release(const std::vector<int>& slots);

  const std::string& name(int slot) const { return devices_[slot].name; }
  int size() const { return static_cast<int>(devices_.size()); }
  int busy(int slot) const { return devices_[slot].busy; }
  int slots_per_device() const { return slots_per_device_; }
  int gpu_count() const;
  // Slots of CPU devices in all, busy or not.
  int cpu_slots() const;
  std::vector<std::string> names() const;

 private:
  struct Device {
    std::string name;
    bool is_gpu = false;
    int busy = 0;  // slots in use
  };
  DeviceInventory(std::vector<Device> devices, int slots_per_device)
      : devices_(std::move(devices)), slots_per_device_(slots_per_device) {}
  // The slots Acquire(gpus, ranks) would take now, or none.
  std::vector<int> Pick(int gpus, int ranks) const;

  std::vector<Device> devices_;
  int slots_per_device_;
};

}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_DEVICE_INVENTORY_H_
