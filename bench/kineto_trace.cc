#include "bench/kineto_trace.h"

#include <c10/util/Exception.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <iostream>
#include <set>
#include <string>

namespace attune::bench {
namespace {

namespace profiler = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

}  // namespace

void KinetoTrace::Start() {
  if (path_.empty() || recording_) return;
  std::set<ActivityType> activities = {ActivityType::CPU};
  if (cuda_) activities.insert(ActivityType::CUDA);
  const ProfilerConfig config(ProfilerState::KINETO);
  try {
    profiler::prepareProfiler(config, activities);
    profiler::enableProfiler(config, activities);
    recording_ = true;
  } catch (const c10::Error& e) {
    std::cerr << "attune-bench: no profile (this LibTorch's profiler: "
              << e.what_without_backtrace() << ")\n";
  }
}

bool KinetoTrace::StopAndSave() {
  if (!recording_) return false;
  recording_ = false;
  try {
    profiler::disableProfiler()->save(path_);
    std::cerr << "attune-bench: profile written to " << path_ << std::endl;
    return true;
  } catch (const c10::Error& e) {
    std::cerr << "attune-bench: profile not written: " << e.what_without_backtrace() << "\n";
    return false;
  }
}

}  // namespace attune::bench
