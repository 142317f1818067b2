#include "server/engine/data_parallel.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

// Gloo's headers come with Debian's libgloo-dev (scripts/install-deps.sh); a LibTorch without
// them (PyTorch's wheels on the GPU machine) trains data-parallel on CUDA only.
#if __has_include(<gloo/algorithm.h>)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#define ATTUNE_HAVE_GLOO 1
#endif
// NCCL: CMake defines ATTUNE_C10D_NCCL where LibTorch is a CUDA build with NCCL's header.
#ifdef ATTUNE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace attune::engine {
namespace {

// One c10d process group of either backend; both have the same collectives.
template <typename Group>
class GroupOf : public DataParallel {
 public:
  GroupOf(int rank, int world_size, c10::intrusive_ptr<c10d::Store> store,
          c10::intrusive_ptr<Group> group)
      : DataParallel(rank, world_size), store_(std::move(store)), group_(std::move(group)) {}

  void AllReduceSum(torch::Tensor& flat) override {
    std::vector<at::Tensor> tensors{flat};
    group_->allreduce(tensors)->wait();
  }
  void Broadcast(torch::Tensor& flat) override {
    std::vector<at::Tensor> tensors{flat};
    group_->broadcast(tensors)->wait();
  }

 private:
  c10::intrusive_ptr<c10d::Store> store_;  // the group keeps talking through it
  c10::intrusive_ptr<Group> group_;
};

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

absl::StatusOr<HostPort> ParseRendezvous(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 1 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous: '", address, "' is not HOST:PORT (a port in 1..65535)"));
  }
  return HostPort{address.substr(0, colon), static_cast<uint16_t>(port)};
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataParallel>> DataParallel::Connect(const ParallelOptions& options,
                                                                    torch::Device device) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank: ", options.rank, " of world size ",
                                                   options.world_size, " is not in 0..world-1"));
  }
  absl::StatusOr<HostPort> rendezvous = ParseRendezvous(options.rendezvous);
  if (!rendezvous.ok()) return rendezvous.status();
  const std::chrono::milliseconds timeout(int64_t{1000} * options.timeout_seconds);
  c10d::TCPStoreOptions store_options;
  store_options.port = rendezvous->port;
  store_options.isServer = options.rank == 0;
  store_options.numWorkers = options.world_size;
  store_options.waitWorkers = true;
  store_options.timeout = timeout;
  try {
    auto store = c10::make_intrusive<c10d::TCPStore>(rendezvous->host, store_options);
    return FormGroup(options, rendezvous->host, timeout, store, device);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("rendezvous at ", options.rendezvous, " (rank ",
                                               options.rank, " of ", options.world_size,
                                               "): ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<DataParallel>> DataParallel::FormGroup(
    const ParallelOptions& options, const std::string& host, std::chrono::milliseconds timeout,
    c10::intrusive_ptr<c10d::Store> store, torch::Device device) {
  if (device.is_cuda()) {
#ifdef ATTUNE_C10D_NCCL
    c10::cuda::set_device(device.index());
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(
        store, options.rank, options.world_size, c10d::ProcessGroupNCCL::Options::create());
    return std::unique_ptr<DataParallel>(new GroupOf<c10d::ProcessGroupNCCL>(
        options.rank, options.world_size, store, std::move(group)));
#else
    return absl::UnavailableError(
        "ranks: data-parallel training on CUDA needs a LibTorch built with NCCL");
#endif
  }
#ifdef ATTUNE_HAVE_GLOO
  auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
  const std::string local = options.local_address.empty() ? host : options.local_address;
  gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(local));
  auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, options.rank, options.world_size,
                                                           gloo_options);
  return std::unique_ptr<DataParallel>(new GroupOf<c10d::ProcessGroupGloo>(
      options.rank, options.world_size, store, std::move(group)));
#else
  return absl::UnavailableError(
      "ranks: data-parallel training on the CPU needs LibTorch's Gloo headers (libgloo-dev)");
#endif
}

bool DataParallel::AnyRank(bool local, torch::Device device) {
  torch::Tensor vote = torch::full({1}, local ? 1.0f : 0.0f, torch::dtype(torch::kFloat32));
  vote = vote.to(device);
  AllReduceSum(vote);
  return vote.item<float>() > 0.0f;
}

}  // namespace attune::engine
