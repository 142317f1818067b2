// The enum conversions between the proto and the spec (proto_enums.h).
#include "server/api/proto_enums.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace attune::api {
namespace {

absl::Status UnknownEnum(const char* field, int value) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": unknown value ", value));
}

constexpr char kEvalMetricPrefix[] = "EVAL_METRIC_";

}  // namespace

// The enum conversions: INVALID_ARGUMENT naming the field for a value this server does not know
// (a newer client's).
absl::StatusOr<Task> TaskFromProto(v1::Task task) {
  switch (task) {
    case v1::TASK_UNSPECIFIED:
      return Task::kUnspecified;
    case v1::TASK_SEQUENCE_CLASSIFICATION:
      return Task::kSequenceClassification;
    case v1::TASK_REGRESSION:
      return Task::kRegression;
    case v1::TASK_CAUSAL_LM:
      return Task::kCausalLm;
    default:
      return UnknownEnum("task", task);
  }
}

absl::StatusOr<Method> MethodFromProto(v1::Method method) {
  switch (method) {
    case v1::METHOD_UNSPECIFIED:
    case v1::METHOD_LORA:
      return Method::kLora;
    case v1::METHOD_FULL:
      return Method::kFull;
    case v1::METHOD_DORA:
      return Method::kDora;
    default:
      return UnknownEnum("method", method);
  }
}

absl::StatusOr<Schedule> ScheduleFromProto(v1::Schedule schedule) {
  switch (schedule) {
    case v1::SCHEDULE_UNSPECIFIED:
    case v1::SCHEDULE_LINEAR:
      return Schedule::kLinear;
    case v1::SCHEDULE_COSINE:
      return Schedule::kCosine;
    case v1::SCHEDULE_CONSTANT:
      return Schedule::kConstant;
    default:
      return UnknownEnum("schedule", schedule);
  }
}

v1::Task TaskToProto(Task task) {
  switch (task) {
    case Task::kSequenceClassification:
      return v1::TASK_SEQUENCE_CLASSIFICATION;
    case Task::kRegression:
      return v1::TASK_REGRESSION;
    case Task::kCausalLm:
      return v1::TASK_CAUSAL_LM;
    case Task::kUnspecified:
      break;
  }
  return v1::TASK_UNSPECIFIED;
}

v1::Method MethodToProto(Method method) {
  switch (method) {
    case Method::kFull:
      return v1::METHOD_FULL;
    case Method::kDora:
      return v1::METHOD_DORA;
    case Method::kLora:
      break;
  }
  return v1::METHOD_LORA;
}

v1::Schedule ScheduleToProto(Schedule schedule) {
  switch (schedule) {
    case Schedule::kCosine:
      return v1::SCHEDULE_COSINE;
    case Schedule::kConstant:
      return v1::SCHEDULE_CONSTANT;
    case Schedule::kLinear:
      break;
  }
  return v1::SCHEDULE_LINEAR;
}

// EVAL_METRIC_MCC <-> EvalMetric::kMcc, by name ("EVAL_METRIC_" + the upper-cased short name).

absl::StatusOr<EvalMetric> EvalMetricFromProto(v1::EvalMetric metric) {
  if (metric == v1::EVAL_METRIC_UNSPECIFIED) return EvalMetric::kUnspecified;
  if (!v1::EvalMetric_IsValid(metric)) {
    return absl::InvalidArgumentError(
        absl::StrCat("eval_metric: unknown value ", static_cast<int>(metric),
                     "; expected EVAL_METRIC_ACCURACY, _F1, _MCC, _PEARSON, _SPEARMAN or _LOSS"));
  }
  const std::string name = v1::EvalMetric_Name(metric).substr(sizeof(kEvalMetricPrefix) - 1);
  return ParseEvalMetric(absl::AsciiStrToLower(name));
}

v1::EvalMetric EvalMetricToProto(EvalMetric metric) {
  v1::EvalMetric out = v1::EVAL_METRIC_UNSPECIFIED;
  if (metric != EvalMetric::kUnspecified) {
    v1::EvalMetric_Parse(kEvalMetricPrefix + absl::AsciiStrToUpper(EvalMetricName(metric)), &out);
  }
  return out;
}

}  // namespace attune::api
