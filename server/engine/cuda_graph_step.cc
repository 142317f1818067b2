#include "server/engine/cuda_graph_step.h"

#include <c10/util/Exception.h>
#include <torch/version.h>

#include <utility>

#include "absl/strings/str_cat.h"

#if TORCH_VERSION_MAJOR >= 2 && __has_include(<cuda_runtime_api.h>) && \
    __has_include(<ATen/cuda/CUDAGraph.h>)
#define ATTUNE_CUDA_GRAPHS 1
#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace attune::engine {

absl::Mutex& CudaRngMutex() {
  static absl::Mutex* mutex = new absl::Mutex();
  return *mutex;
}

#if defined(ATTUNE_CUDA_GRAPHS)

bool CudaGraphsAvailable() { return true; }

struct SideStream::State {
  c10::cuda::CUDAStream previous;
  c10::cuda::CUDAStream side;
};

absl::StatusOr<std::unique_ptr<SideStream>> SideStream::Create(c10::Device device) {
  const c10::DeviceIndex index = device.has_index() ? device.index() : 0;
  c10::cuda::CUDAStream previous = c10::cuda::getCurrentCUDAStream(index);
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, index);
  previous.synchronize();  // everything queued so far is done before the side stream starts
  c10::cuda::setCurrentCUDAStream(side);
  return std::unique_ptr<SideStream>(
      new SideStream(std::make_unique<State>(State{previous, side})));
}

SideStream::SideStream(std::unique_ptr<State> state) : state_(std::move(state)) {}

SideStream::~SideStream() {
  try {
    state_->side.synchronize();
  } catch (const c10::Error&) {
    // A destructor must not throw (that terminates attuned, every job with it); the CUDA error
    // is sticky and fails this job's next CUDA call, which reports it.
  }
  c10::cuda::setCurrentCUDAStream(state_->previous);
}

struct CapturedStep::State {
  at::cuda::CUDAGraph graph;
};

absl::StatusOr<std::unique_ptr<CapturedStep>> CapturedStep::Capture(
    const std::function<void()>& body, const CapturedStep* share_pool_with) {
  auto state = std::make_unique<State>();
  const bool cache = at::autocast::is_autocast_cache_enabled();
  at::autocast::set_autocast_cache_enabled(false);
  // Thread-local capture: other jobs' threads on the same GPU keep launching, allocating and
  // synchronising while this one captures (the global mode fails their calls and this capture).
  const at::cuda::MempoolId_t pool = share_pool_with != nullptr
                                         ? share_pool_with->state_->graph.pool()
                                         : at::cuda::MempoolId_t{0, 0};
  absl::WriterMutexLock exclusive(&CudaRngMutex());
  try {
    state->graph.capture_begin(pool, cudaStreamCaptureModeThreadLocal);
    body();
    state->graph.capture_end();
  } catch (const c10::Error& e) {
    at::autocast::set_autocast_cache_enabled(cache);
    return absl::InternalError(
        absl::StrCat("CUDA graph capture failed: ", e.what_without_backtrace()));
  }
  at::autocast::set_autocast_cache_enabled(cache);
  return std::unique_ptr<CapturedStep>(new CapturedStep(std::move(state)));
}

CapturedStep::CapturedStep(std::unique_ptr<State> state) : state_(std::move(state)) {}
CapturedStep::~CapturedStep() = default;

void CapturedStep::Replay() { state_->graph.replay(); }

#else  // No CUDA LibTorch >= 2 here: stubs that say so.

bool CudaGraphsAvailable() { return false; }

struct SideStream::State {};
absl::StatusOr<std::unique_ptr<SideStream>> SideStream::Create(c10::Device) {
  return absl::FailedPreconditionError("CUDA graphs: this build has no CUDA LibTorch >= 2");
}
SideStream::SideStream(std::unique_ptr<State> state) : state_(std::move(state)) {}
SideStream::~SideStream() = default;

struct CapturedStep::State {};
absl::StatusOr<std::unique_ptr<CapturedStep>> CapturedStep::Capture(const std::function<void()>&,
                                                                    const CapturedStep*) {
  return absl::FailedPreconditionError("CUDA graphs: this build has no CUDA LibTorch >= 2");
}
CapturedStep::CapturedStep(std::unique_ptr<State> state) : state_(std::move(state)) {}
CapturedStep::~CapturedStep() = default;
void CapturedStep::Replay() {}

#endif

}  // namespace attune::engine
