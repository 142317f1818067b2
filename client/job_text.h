// How the `attune` CLI shows jobs and events to people (text) and to programs (proto3 JSON).
//
// Pure functions of the proto messages: no I/O, thread-safe.
#ifndef ATTUNE_CLIENT_JOB_TEXT_H_
#define ATTUNE_CLIENT_JOB_TEXT_H_

#include <cstdint>
#include <string>

#include "attune/v1/attune.pb.h"
#include "google/protobuf/message.h"

namespace attune::client {

// "512 B", "1.2 MiB", "476 MiB", "3.1 GiB" (binary units; one decimal below 10).
std::string HumanBytes(int64_t bytes);

// "QUEUED", "RUNNING", ...
std::string StateName(v1::JobState state);

// "adapter 1.2 MiB, 0.24% of the 476 MiB base model"; empty while either size is unknown (0).
std::string StorageSummary(const v1::Job& job);

// A multi-line readable summary for `attune get`.
std::string JobSummary(const v1::Job& job);

// One line per job for `attune list`: id, state, step/total, name.
std::string JobListLine(const v1::Job& job);

// One plain line per event for `attune watch` when stdout is not a terminal.
std::string EventLine(const v1::JobEvent& event);

// The detail `attune watch` shows beside its progress bar: "120/300 loss 0.4123 ETA 0:42";
// eta < 0 = unknown (no ETA).
std::string StepProgressText(const v1::JobEvent::StepMetrics& step, double eta_seconds);

// The message in the proto3 JSON mapping, on one line.
std::string ToJson(const google::protobuf::Message& message);

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_JOB_TEXT_H_
