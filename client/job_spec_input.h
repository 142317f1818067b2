// Builds the proto JobSpec the `attune submit` command sends, from a YAML file and flags.
//
// The YAML file uses the proto's field names (snake_case), with a few conveniences for people:
// `task: classification|regression|causal-lm`, `method: lora|full`,
// `schedule: linear|cosine|constant`, `eval_metric: accuracy|f1|mcc|pearson|spearman|loss`,
// `targets: q,v` or a list, `lr` for `learning_rate`, and
// the LoRA fields either nested under `lora:` or flat (`rank`, `alpha`, `dropout`,
// `use_rslora`, also spelt `lora_rank`, `lora_alpha`, ...). Relative paths in the file are taken
// relative to the file's directory; relative paths given as flags relative to the current
// directory. Either way the client sends absolute paths, since the server has its own working
// directory.
#ifndef ATTUNE_CLIENT_JOB_SPEC_INPUT_H_
#define ATTUNE_CLIENT_JOB_SPEC_INPUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "attune/v1/attune.pb.h"

namespace attune::client {

// Reads `path` (YAML) into a JobSpec. Returns INVALID_ARGUMENT naming the key on unknown keys,
// wrong types or unknown enum names, and NOT_FOUND when the file cannot be read.
absl::StatusOr<v1::JobSpec> JobSpecFromYamlFile(const std::string& path);

// The same for YAML text (`attune sweep` writes one such document per job of its grid): relative
// paths are taken against `base_dir`, and `source` names the document in messages.
absl::StatusOr<v1::JobSpec> JobSpecFromYamlText(const std::string& yaml,
                                                const std::string& base_dir,
                                                const std::string& source);

// Parses the short enum names people type. INVALID_ARGUMENT names the flag and what is allowed.
absl::StatusOr<v1::Task> ParseTaskName(const std::string& name);
absl::StatusOr<v1::Method> ParseMethodName(const std::string& name);
absl::StatusOr<v1::Schedule> ParseScheduleName(const std::string& name);
absl::StatusOr<v1::EvalMetric> ParseEvalMetricName(const std::string& name);
std::string TaskShortName(v1::Task task);
std::string MethodShortName(v1::Method method);
std::string ScheduleShortName(v1::Schedule schedule);
std::string EvalMetricShortName(v1::EvalMetric metric);  // "mcc"; "" for unspecified

// Parses "v=4,k=2" into `ratios` (merging; later keys win). INVALID_ARGUMENT on a malformed
// pair or a value that is not a number; the range is the server's to check.
absl::Status ParseRatioList(const std::string& text,
                            google::protobuf::Map<std::string, double>* ratios);

// Parses "key=value" into `labels`. INVALID_ARGUMENT when there is no '='.
absl::Status ParseLabel(const std::string& text,
                        google::protobuf::Map<std::string, std::string>* labels);

// Splits "q,v" into targets, trimming spaces and skipping empty items.
void ParseTargets(const std::string& text,
                  google::protobuf::RepeatedPtrField<std::string>* targets);

// Returns `path` made absolute against `base_dir` (no symlink resolution; the server does
// that). Empty stays empty.
std::string AbsolutePath(const std::string& path, const std::string& base_dir);

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_JOB_SPEC_INPUT_H_
