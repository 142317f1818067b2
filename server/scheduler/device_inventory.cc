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
    bool valid = device == "cpu" ||
                 (IsGpu(device) && absl::SimpleAtoi(device.substr(5), &index) && index >= 0);
    if (!valid) {
      return absl::InvalidArgumentError(
          absl::StrCat("devices: unknown device '", device, "'; expected \"cpu\" or \"cuda:N\""));
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

std::vector<int> DeviceInventory::Acquire(int gpus) {
  std::vector<int> free;
  for (int i = 0; i < size(); ++i) {
    if (devices_[i].busy < slots_per_device_ && (gpus == 0 || devices_[i].is_gpu)) {
      free.push_back(i);
    }
  }
  std::stable_sort(free.begin(), free.end(), [&](int a, int b) {
    if (devices_[a].is_gpu != devices_[b].is_gpu) return !devices_[a].is_gpu;
    return devices_[a].busy < devices_[b].busy;
  });
  const size_t wanted = gpus <= 0 ? 1 : static_cast<size_t>(gpus);
  if (free.size() < wanted) return {};
  free.resize(wanted);
  std::sort(free.begin(), free.end());
  for (int slot : free) ++devices_[slot].busy;
  return free;
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

std::vector<std::string> DeviceInventory::names() const {
  std::vector<std::string> names;
  for (const Device& device : devices_) names.push_back(device.name);
  return names;
}

}  // namespace attune::scheduler
