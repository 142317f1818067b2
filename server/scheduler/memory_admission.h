// Memory admission at submission: a job whose estimated training memory (SpecCheck's
// estimated_memory_bytes, an upper bound from batch_size x max_seq_len x the model's shapes) is
// more than its device has is refused at CreateJob, instead of driving the server out of memory
// once it runs. A CPU job of N ranks runs N processes on this host, each with its own copy of
// the model and its own batch, so it needs N times the estimate.
//
// The CPU's figure is MemAvailable from /proc/meminfo. A GPU's total is not visible through the
// engine's plain headers (only a CUDA LibTorch knows it), so GPU jobs are not checked here; a
// GPU job that still runs out of memory FAILS with RESOURCE_EXHAUSTED (exception_status.h) and,
// being terminal, is never requeued. Plain functions: thread-safe.
#ifndef ATTUNE_SERVER_SCHEDULER_MEMORY_ADMISSION_H_
#define ATTUNE_SERVER_SCHEDULER_MEMORY_ADMISSION_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "common/job_spec.h"

namespace attune::scheduler {

// MemAvailable of `meminfo_path` (Linux's /proc/meminfo format) in bytes; nullopt when the file
// or the line is missing.
std::optional<int64_t> AvailableHostMemory(const std::string& meminfo_path = "/proc/meminfo");

// OK when `estimated_bytes` (one rank's) is 0 (not estimated), `available_bytes` is unknown, or
// `ranks` x the estimate fits; else RESOURCE_EXHAUSTED naming the fields, e.g. "batch_size 65536
// x max_seq_len 1048576: training needs an estimated 1.2e+15 bytes (an upper bound) but the CPU
// has 2.3e+10 bytes available; lower batch_size or max_seq_len", and with ranks > 1 "ranks 4 x
// batch_size 16 x max_seq_len 128: ...; lower ranks, batch_size or max_seq_len".
absl::Status AdmitMemory(const TrainSpec& spec, int64_t estimated_bytes,
                         std::optional<int64_t> available_bytes, int ranks = 1);

}  // namespace attune::scheduler

#endif  // ATTUNE_SERVER_SCHEDULER_MEMORY_ADMISSION_H_
