// A LibTorch (Kineto) profiler window for attune-bench: the GPU machine has no Nsight Systems,
// but LibTorch ships Kineto and CUPTI, as torch.profiler uses them. Records CPU operators and CUDA
// kernels (those a CUDA graph replays included) between Start() and StopAndSave(), and writes a
// Chrome trace that bench/profile_report.py --kineto groups by kernel kind.
#ifndef ATTUNE_BENCH_KINETO_TRACE_H_
#define ATTUNE_BENCH_KINETO_TRACE_H_

#include <string>
#include <utility>

namespace attune::bench {

class KinetoTrace {
 public:
  // `path` = "" records nothing. `cuda`: also the CUDA kernels and copies.
  KinetoTrace(std::string path, bool cuda) : path_(std::move(path)), cuda_(cuda) {}

  // True between a Start() that began recording and StopAndSave().
  bool recording() const { return recording_; }
  // Begins recording; a LibTorch without Kineto prints why and records nothing.
  void Start();
  // Ends recording and writes the trace to the path; true when it was written (false, and a
  // no-op, unless Start() began one).
  bool StopAndSave();

 private:
  const std::string path_;
  const bool cuda_;
  bool recording_ = false;
};

}  // namespace attune::bench

#endif  // ATTUNE_BENCH_KINETO_TRACE_H_
