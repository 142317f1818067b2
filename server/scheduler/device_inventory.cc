#include "server/scheduler/device_inventory.h"

#include <algorithm>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace attune::scheduler {
namespace {

bool IsGpu(const std::string& device) { return absl::StartsWith(device, "cuda:"); }
// A CPU slot filled by a worker on another machine (attuned --worker-listen): only for the
// ranks above 0 of a job of several (rank 0 runs beside attuned and hosts the rendezvous).
bool IsRemote(const std::string& device) { return device == kRemoteCpu; }

}  // namespace

absl::StatusOr<DeviceInventory> DeviceInventory::Create(const std::vector<std::string>& devices,
                                                        int slots_per_device) {
  if (devices.empty()) {
    return absl::InvalidArgumentError(
        "devices: at least one device required (\"cpu\" or \"cuda:N\")");
  }
  std::set<std::string> seen;
  std::vector<Device> inventory;
  for (const std::string& device : devices) {
    int index = 0;
    bool valid = device == "cpu" || IsRemote(device) ||
                 (IsGpu(device) && absl::SimpleAtoi(device.substr(5), &index) && index >= 0);
    if (!valid) {
      return absl::InvalidArgumentError(
          absl::StrCat("devices: unknown device '", device,
                       "'; expected \"cpu\", \"cuda:N\" or \"remote-cpu\""));
    }
    if (!seen.insert(device).second) {
      return absl::InvalidArgumentError(absl::StrCat("devices: '", device, "' listed twice"));
    }
    inventory.push_back(Device{device, IsGpu(device), 0});
  }
  if (slots_per_device < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("slots_per_device: ", slots_per_device, " must be >= 1"));
  }
  return DeviceInventory(std::move(inventory), slots_per_device);
}

bool DeviceInventory::Suits(int slot, int gpus, int ranks) const {
  if (gpus > 0) return devices_[slot].is_gpu;
  if (IsRemote(devices_[slot].name) && ranks <= 1) return false;
  return ranks <= 1 || !devices_[slot].is_gpu;
}

std::vector<int> DeviceInventory::Pick(int gpus, int ranks) const {
  const int wanted = gpus > 0 ? gpus : std::max(ranks, 1);
  std::vector<int> busy(size());  // as it would be with the slots picked so far
  for (int i = 0; i < size(); ++i) busy[i] = devices_[i].busy;
  std::vector<int> picked;
  for (int n = 0; n < wanted; ++n) {
    int best = -1;
    for (int i = 0; i < size(); ++i) {
      if (busy[i] >= slots_per_device_ || !Suits(i, gpus, ranks)) continue;
      if (gpus > 0 && busy[i] > devices_[i].busy) continue;  // n distinct GPUs
      // A CPU first, then the least busy; ties keep the inventory order.
      if (best < 0 || (devices_[i].is_gpu != devices_[best].is_gpu ? !devices_[i].is_gpu
                                                                   : busy[i] < busy[best])) {
        best = i;
      }
    }
    if (best < 0) return {};
    ++busy[best];
    picked.push_back(best);
  }
  std::sort(picked.begin(), picked.end());
  if (IsRemote(devices_[picked.front()].name)) return {};  // rank 0 must be beside attuned
  return picked;
}

std::vector<int> DeviceInventory::Acquire(int gpus, int ranks) {
  std::vector<int> slots = Pick(gpus, ranks);
  for (int slot : slots) ++devices_[slot].busy;
  return slots;
}

void DeviceInventory::Release(const std::vector<int>& slots) {
  for (int slot : slots) {
    if (slot >= 0 && slot < size() && devices_[slot].busy > 0) --devices_[slot].busy;
  }
}

int DeviceInventory::gpu_count() const {
  return static_cast<int>(
      std::count_if(devices_.begin(), devices_.end(), [](const Device& d) { return d.is_gpu; }));
}

int DeviceInventory::cpu_slots() const {
  return static_cast<int>(std::count_if(devices_.begin(), devices_.end(),
                                        [](const Device& d) { return !d.is_gpu; })) *
         slots_per_device_;
}

std::vector<std::string> DeviceInventory::names() const {
  std::vector<std::string> names;
  for (const Device& device : devices_) names.push_back(device.name);
  return names;
}

}  // namespace attune::scheduler
