// Conversions between the API's proto messages and the plain C++ records the scheduler and the
// store use. The only file that knows both sides' field names.
//
// Incoming specs get the documented defaults for unset fields (`optional` proto fields map to
// the TrainSpec defaults; empty `targets` becomes {"q", "v"}); value ranges are the scheduler's
// to check (ValidateJobSpecFields). All functions are pure and thread-safe.
#ifndef ATTUNE_SERVER_API_PROTO_CONVERT_H_
#define ATTUNE_SERVER_API_PROTO_CONVERT_H_

#include "absl/status/statusor.h"
#include "attune/v1/attune.pb.h"
#include "common/job_spec.h"
#include "server/store/records.h"

namespace attune::api {

// Returns the JobSpec `proto` describes. INVALID_ARGUMENT naming the field for enum values the
// server does not know (e.g. "task: unknown value 9").
absl::StatusOr<JobSpec> JobSpecFromProto(const v1::JobSpec& proto);

// The inverse, with every field set explicitly.
v1::JobSpec JobSpecToProto(const JobSpec& spec);

v1::JobState JobStateToProto(store::JobState state);
// INVALID_ARGUMENT for JOB_STATE_UNSPECIFIED or unknown values.
absl::StatusOr<store::JobState> JobStateFromProto(v1::JobState state);

// The evaluation's metrics into `p`, the optional ones set only where known.
void EvalToProto(const EvalMetrics& m, v1::JobEvent::EvalMetrics* p);
v1::EvalMetric EvalMetricToProto(EvalMetric metric);

v1::Job JobToProto(const store::Job& job);
v1::JobEvent JobEventToProto(const store::JobEvent& event);

}  // namespace attune::api

#endif  // ATTUNE_SERVER_API_PROTO_CONVERT_H_
