#include "bench/kineto_trace.h"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <exception>
#include <iostream>
#include <set>
#include <string>

namespace attune::bench {
namespace {

namespace profiler = torch::autograd::profiler;

// LibTorch's messages carry a backtrace after the first line.
std::string FirstLine(const char* what) {
  const std::string text(what);
  return text.substr(0, text.find('\n'));
}
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
  } catch (const std::exception& e) {
    std::cerr << "attune-bench: no profile (this LibTorch's profiler: " << FirstLine(e.what())
              << ")\n";
  }
}

void KinetoTrace::StopAndSave() {
  if (!recording_) return;
  recording_ = false;
  try {
    profiler::disableProfiler()->save(path_);
    std::cerr << "attune-bench: profile written to " << path_ << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "attune-bench: profile not written: " << FirstLine(e.what()) << "\n";
  }
}

}  // namespace attune::bench
