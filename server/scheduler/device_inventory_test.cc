#include "server/scheduler/device_inventory.h"

#include "gtest/gtest.h"

namespace attune::scheduler {
namespace {

TEST(DeviceInventoryTest, RejectsBadDeviceLists) {
  EXPECT_EQ(DeviceInventory::Create({}, 1).status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status status = DeviceInventory::Create({"cuda:x"}, 1).status();
  EXPECT_EQ(status.message(),
            "devices: unknown device 'cuda:x'; expected \"cpu\", \"cuda:N\" or \"remote-cpu\"");
  status = DeviceInventory::Create({"cpu", "cpu"}, 1).status();
  EXPECT_EQ(status.message(), "devices: 'cpu' listed twice");
  status = DeviceInventory::Create({"cpu"}, 0).status();
  EXPECT_EQ(status.message(), "slots_per_device: 0 must be >= 1");
}

// A remote-cpu slot (a worker on another machine) takes only ranks above 0 of a job of several:
// never a job of one rank, never rank 0.
TEST(DeviceInventoryTest, RemoteSlotsTakeOnlyTheUpperRanksOfAJobOfSeveral) {
  DeviceInventory inventory = DeviceInventory::Create({"cpu", kRemoteCpu}, 1).value();
  EXPECT_EQ(inventory.cpu_slots(), 2);
  EXPECT_EQ(inventory.Acquire(0, 2), (std::vector<int>{0, 1}));
  inventory.Release({0, 1});
  EXPECT_EQ(inventory.Acquire(0, 1), std::vector<int>{0});
  EXPECT_TRUE(inventory.Acquire(0, 1).empty());  // the remote slot is free but not for one rank
  inventory.Release({0});
  DeviceInventory remote_only = DeviceInventory::Create({"cpu", kRemoteCpu}, 2).value();
  EXPECT_EQ(remote_only.Acquire(0, 1), std::vector<int>{0});
  EXPECT_EQ(remote_only.Acquire(0, 1), std::vector<int>{0});
  EXPECT_TRUE(remote_only.Acquire(0, 2).empty());  // rank 0 would be remote
}

TEST(DeviceInventoryTest, GpuJobsTakeAllTheirGpusAtOnceOrNothing) {
  DeviceInventory inventory = DeviceInventory::Create({"cpu", "cuda:0", "cuda:1"}, 1).value();
  EXPECT_EQ(inventory.gpu_count(), 2);
  EXPECT_EQ(inventory.Acquire(1), std::vector<int>{1});
  EXPECT_TRUE(inventory.Acquire(2).empty());  // only cuda:1 is free: no partial grab
  EXPECT_EQ(inventory.busy(2), 0);
  EXPECT_EQ(inventory.Acquire(0), std::vector<int>{0});  // CPU first for gpus = 0
  EXPECT_EQ(inventory.Acquire(0), std::vector<int>{2});  // then a free GPU slot
  EXPECT_TRUE(inventory.Acquire(0).empty());
  inventory.Release({1});
  inventory.Release({2});
  EXPECT_EQ(inventory.Acquire(2), (std::vector<int>{1, 2}));
}

TEST(DeviceInventoryTest, SlotsPerDeviceAllowSharingAndPreferTheLeastBusy) {
  DeviceInventory inventory = DeviceInventory::Create({"cuda:0", "cuda:1"}, 2).value();
  EXPECT_EQ(inventory.Acquire(1), std::vector<int>{0});
  EXPECT_EQ(inventory.Acquire(1), std::vector<int>{1});
  EXPECT_EQ(inventory.Acquire(2), (std::vector<int>{0, 1}));
  EXPECT_TRUE(inventory.Acquire(1).empty());
  EXPECT_EQ(inventory.busy(0), 2);
}

// A CPU job of N ranks takes N CPU slots at once, several of one device, and gives each back.
TEST(DeviceInventoryTest, CpuRanksTakeSeveralSlotsOfOneDeviceAllOrNothing) {
  DeviceInventory inventory = DeviceInventory::Create({"cpu", "cuda:0"}, 3).value();
  EXPECT_EQ(inventory.cpu_slots(), 3);
  EXPECT_EQ(inventory.Acquire(0, 2), (std::vector<int>{0, 0}));
  EXPECT_EQ(inventory.busy(0), 2);
  EXPECT_FALSE(inventory.CanAcquire(0, 2));
  EXPECT_TRUE(inventory.Acquire(0, 2).empty());  // one CPU slot left: no half, no GPU slot
  EXPECT_EQ(inventory.busy(0), 2);
  EXPECT_EQ(inventory.busy(1), 0);
  EXPECT_EQ(inventory.Acquire(0, 1), std::vector<int>{0});  // one rank still fits
  EXPECT_EQ(inventory.Acquire(0, 1), std::vector<int>{1});  // then a GPU slot, as before
  inventory.Release({0, 0});
  EXPECT_EQ(inventory.busy(0), 1);  // both slots of the two-rank job came back
  EXPECT_TRUE(inventory.CanAcquire(0, 2));
  EXPECT_EQ(inventory.busy(0), 1);  // CanAcquire takes nothing
  EXPECT_EQ(inventory.Acquire(0, 2), (std::vector<int>{0, 0}));
  EXPECT_EQ(inventory.busy(0), 3);
}

TEST(DeviceInventoryTest, GpuJobsIgnoreRanksAndCpuRanksNeedCpuDevices) {
  DeviceInventory gpus = DeviceInventory::Create({"cuda:0", "cuda:1"}, 2).value();
  EXPECT_EQ(gpus.cpu_slots(), 0);
  EXPECT_TRUE(gpus.Acquire(0, 2).empty());  // the ranks of a CPU job never take GPU slots
  EXPECT_EQ(gpus.Acquire(2, 2), (std::vector<int>{0, 1}));  // distinct GPUs, one slot each
  EXPECT_TRUE(gpus.Suits(0, 1));
  EXPECT_TRUE(gpus.Suits(0, 0, 1));
  EXPECT_FALSE(gpus.Suits(0, 0, 2));
  DeviceInventory cpu = DeviceInventory::Create({"cpu", "cuda:0"}, 1).value();
  EXPECT_TRUE(cpu.Suits(0, 0, 2));
  EXPECT_FALSE(cpu.Suits(0, 1));
}

}  // namespace
}  // namespace attune::scheduler
