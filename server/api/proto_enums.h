// The enum conversions between the API's proto and the job spec (common/job_spec.h), for
// proto_convert.cc. The *FromProto functions return INVALID_ARGUMENT naming the field for a value
// this server does not know (a newer client's).
#ifndef ATTUNE_SERVER_API_PROTO_ENUMS_H_
#define ATTUNE_SERVER_API_PROTO_ENUMS_H_

#include "absl/status/statusor.h"
#include "attune/v1/attune.pb.h"
#include "common/job_spec.h"

namespace attune::api {

absl::StatusOr<Task> TaskFromProto(v1::Task task);
absl::StatusOr<Method> MethodFromProto(v1::Method method);
absl::StatusOr<Schedule> ScheduleFromProto(v1::Schedule schedule);
absl::StatusOr<EvalMetric> EvalMetricFromProto(v1::EvalMetric metric);
v1::Task TaskToProto(Task task);
v1::Method MethodToProto(Method method);
v1::Schedule ScheduleToProto(Schedule schedule);

}  // namespace attune::api

#endif  // ATTUNE_SERVER_API_PROTO_ENUMS_H_
