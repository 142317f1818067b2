#include "server/store/records.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace attune::store {

bool IsTerminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

std::string JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "QUEUED";
    case JobState::kRunning:
      return "RUNNING";
    case JobState::kSucceeded:
      return "SUCCEEDED";
    case JobState::kFailed:
      return "FAILED";
    case JobState::kCancelled:
      return "CANCELLED";
    case JobState::kPaused:
      return "PAUSED";
  }
  return "QUEUED";
}

absl::StatusOr<JobState> ParseJobState(const std::string& name) {
  for (JobState state : {JobState::kQueued, JobState::kRunning, JobState::kSucceeded,
                         JobState::kFailed, JobState::kCancelled, JobState::kPaused}) {
    if (JobStateName(state) == name) return state;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("state: unknown job state '", name,
                   "'; expected one of QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, PAUSED"));
}

std::string EventTypeName(EventType type) {
  switch (type) {
    case EventType::kStateChanged:
      return "STATE_CHANGED";
    case EventType::kMetrics:
      return "METRICS";
    case EventType::kEval:
      return "EVAL";
    case EventType::kCheckpoint:
      return "CHECKPOINT";
    case EventType::kWarning:
      return "WARNING";
    case EventType::kError:
      return "ERROR";
  }
  return "STATE_CHANGED";
}

absl::StatusOr<EventType> ParseEventType(const std::string& name) {
  for (EventType type : {EventType::kStateChanged, EventType::kMetrics, EventType::kEval,
                         EventType::kCheckpoint, EventType::kWarning, EventType::kError}) {
    if (EventTypeName(type) == name) return type;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("type: unknown event type '", name,
                   "'; expected one of STATE_CHANGED, METRICS, EVAL, CHECKPOINT, WARNING, ERROR"));
}

}  // namespace attune::store
