#include "client/job_spec_input.h"

#include <filesystem>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace attune::client {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

// A YAML scalar as JSON: proto3 JSON accepts numbers written as strings for numeric fields, so
// everything but booleans stays a string and the proto parser checks the types.
json ScalarToJson(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (text == "true" || text == "false") return text == "true";
  return text;
}

absl::StatusOr<json> NodeToJson(const YAML::Node& node, const std::string& where) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return ScalarToJson(node);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : node) {
        ASSIGN_OR_RETURN(json value, NodeToJson(item, where));
        out.push_back(std::move(value));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& item : node) {
        const std::string key = item.first.as<std::string>();
        ASSIGN_OR_RETURN(json value, NodeToJson(item.second, where + "." + key));
        out[key] = std::move(value);
      }
      return out;
    }
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return json();
  }
  return json();
}

}  // namespace

absl::StatusOr<v1::Task> ParseTaskName(const std::string& name) {
  if (name == "classification") return v1::TASK_SEQUENCE_CLASSIFICATION;
  if (name == "regression") return v1::TASK_REGRESSION;
  if (name == "causal-lm") return v1::TASK_CAUSAL_LM;
  v1::Task task;
  if (v1::Task_Parse(name, &task) && task != v1::TASK_UNSPECIFIED) return task;
  return Invalid(absl::StrCat("task: unknown task '", name,
                              "'; expected one of classification, regression, causal-lm"));
}

absl::StatusOr<v1::Method> ParseMethodName(const std::string& name) {
  if (name == "lora") return v1::METHOD_LORA;
  if (name == "full") return v1::METHOD_FULL;
  if (name == "dora") return v1::METHOD_DORA;
  v1::Method method;
  if (v1::Method_Parse(name, &method)) return method;
  return Invalid(
      absl::StrCat("method: unknown method '", name, "'; expected one of lora, full, dora"));
}

absl::StatusOr<v1::Schedule> ParseScheduleName(const std::string& name) {
  if (name == "linear") return v1::SCHEDULE_LINEAR;
  if (name == "cosine") return v1::SCHEDULE_COSINE;
  if (name == "constant") return v1::SCHEDULE_CONSTANT;
  v1::Schedule schedule;
  if (v1::Schedule_Parse(name, &schedule)) return schedule;
  return Invalid(absl::StrCat("schedule: unknown schedule '", name,
                              "'; expected one of linear, cosine, constant"));
}

absl::StatusOr<v1::EvalMetric> ParseEvalMetricName(const std::string& name) {
  v1::EvalMetric metric;
  if (v1::EvalMetric_Parse(name, &metric) && metric != v1::EVAL_METRIC_UNSPECIFIED) return metric;
  // The short names are common/metrics.h's, and so is the message for an unknown one.
  RETURN_IF_ERROR(ParseEvalMetric(name).status());
  v1::EvalMetric_Parse("EVAL_METRIC_" + absl::AsciiStrToUpper(name), &metric);
  return metric;
}

std::string EvalMetricShortName(v1::EvalMetric metric) {
  if (metric == v1::EVAL_METRIC_UNSPECIFIED || !v1::EvalMetric_IsValid(metric)) return "";
  return absl::AsciiStrToLower(v1::EvalMetric_Name(metric).substr(sizeof("EVAL_METRIC_") - 1));
}

std::string TaskShortName(v1::Task task) {
  switch (task) {
    case v1::TASK_SEQUENCE_CLASSIFICATION:
      return "classification";
    case v1::TASK_REGRESSION:
      return "regression";
    case v1::TASK_CAUSAL_LM:
      return "causal-lm";
    default:
      return "unspecified";
  }
}

std::string MethodShortName(v1::Method method) {
  if (method == v1::METHOD_DORA) return "dora";
  return method == v1::METHOD_FULL ? "full" : "lora";
}

std::string ScheduleShortName(v1::Schedule schedule) {
  switch (schedule) {
    case v1::SCHEDULE_COSINE:
      return "cosine";
    case v1::SCHEDULE_CONSTANT:
      return "constant";
    default:
      return "linear";
  }
}

absl::Status ParseRatioList(const std::string& text,
                            google::protobuf::Map<std::string, double>* ratios) {
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    std::string key(absl::StripAsciiWhitespace(kv.first));
    double value = 0;
    if (key.empty() || !absl::SimpleAtod(absl::StripAsciiWhitespace(kv.second), &value)) {
      return Invalid(absl::StrCat("lr_ratios: '", item, "' is not projection=number (e.g. v=4)"));
    }
    (*ratios)[key] = value;
  }
  return absl::OkStatus();
}

absl::Status ParseLabel(const std::string& text,
                        google::protobuf::Map<std::string, std::string>* labels) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Invalid(absl::StrCat("labels: '", text, "' is not key=value"));
  }
  (*labels)[text.substr(0, eq)] = text.substr(eq + 1);
  return absl::OkStatus();
}

void ParseTargets(const std::string& text,
                  google::protobuf::RepeatedPtrField<std::string>* targets) {
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    *targets->Add() = std::string(absl::StripAsciiWhitespace(item));
  }
}

std::string AbsolutePath(const std::string& path, const std::string& base_dir) {
  if (path.empty()) return path;
  fs::path p(path);
  if (p.is_absolute()) return p.lexically_normal().string();
  return (fs::path(base_dir) / p).lexically_normal().string();
}

namespace {

// People's conveniences in the YAML file -> proto field names and values, in `*doc_ptr`.
absl::Status ApplyConveniences(json* doc_ptr) {
  json& doc = *doc_ptr;
  if (doc.contains("lr")) {
    doc["learning_rate"] = doc["lr"];
    doc.erase("lr");
  }
  for (const char* key : {"rank", "alpha", "dropout", "use_rslora"}) {
    for (const std::string& flat : {std::string(key), absl::StrCat("lora_", key)}) {
      if (!doc.contains(flat)) continue;
      // `lora: 5` and `rank: 8` together (found by the fuzzer): not a place to put the rank.
      if (doc.contains("lora") && !doc["lora"].is_object()) {
        return Invalid(
            absl::StrCat("lora: expected a mapping (rank, alpha, dropout, use_rslora) "
                         "when '",
                         flat, "' is also given"));
      }
      doc["lora"][key] = doc[flat];
      doc.erase(flat);
    }
  }
  if (doc.contains("targets") && doc["targets"].is_string()) {
    google::protobuf::RepeatedPtrField<std::string> targets;
    ParseTargets(doc["targets"].get<std::string>(), &targets);
    doc["targets"] = std::vector<std::string>(targets.begin(), targets.end());
  }
  if (doc.contains("task") && doc["task"].is_string()) {
    ASSIGN_OR_RETURN(v1::Task task, ParseTaskName(doc["task"].get<std::string>()));
    doc["task"] = v1::Task_Name(task);
  }
  if (doc.contains("method") && doc["method"].is_string()) {
    ASSIGN_OR_RETURN(v1::Method method, ParseMethodName(doc["method"].get<std::string>()));
    doc["method"] = v1::Method_Name(method);
  }
  if (doc.contains("eval_metric") && doc["eval_metric"].is_string()) {
    ASSIGN_OR_RETURN(v1::EvalMetric metric,
                     ParseEvalMetricName(doc["eval_metric"].get<std::string>()));
    doc["eval_metric"] = v1::EvalMetric_Name(metric);
  }
  if (doc.contains("schedule") && doc["schedule"].is_string()) {
    ASSIGN_OR_RETURN(v1::Schedule schedule, ParseScheduleName(doc["schedule"].get<std::string>()));
    doc["schedule"] = v1::Schedule_Name(schedule);
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

// The JobSpec of a parsed --config document; `source` names it in messages.
absl::StatusOr<v1::JobSpec> JobSpecFromYamlNode(const YAML::Node& root, const std::string& base,
                                                const std::string& source) {
  const std::string& path = source;
  if (!root.IsMap()) return Invalid(absl::StrCat("config: ", path, ": expected a mapping"));
  absl::StatusOr<json> converted;
  try {
    converted = NodeToJson(root, "");
  } catch (const YAML::Exception& e) {  // e.g. a bad scalar conversion (found by the fuzzer)
    return Invalid(absl::StrCat("config: ", path, ": ", e.what()));
  }
  ASSIGN_OR_RETURN(json doc, std::move(converted));

  RETURN_IF_ERROR(ApplyConveniences(&doc));
  v1::JobSpec spec;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  std::string doc_text;
  try {
    doc_text = doc.dump();
  } catch (const json::type_error&) {  // a string that is not UTF-8 (found by the fuzzer)
    return Invalid(absl::StrCat("config: ", path, ": a value is not valid UTF-8 text"));
  }
  auto status = google::protobuf::util::JsonStringToMessage(doc_text, &spec, options);
  if (!status.ok()) {
    return Invalid(absl::StrCat("config: ", path, ": ", std::string(status.message())));
  }
  spec.set_model(AbsolutePath(spec.model(), base));
  spec.set_train(AbsolutePath(spec.train(), base));
  spec.set_validation(AbsolutePath(spec.validation(), base));
  return spec;
}

}  // namespace

absl::StatusOr<v1::JobSpec> JobSpecFromYamlFile(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat("config: cannot read ", path));
  } catch (const YAML::Exception& e) {
    return Invalid(absl::StrCat("config: ", path, ": ", e.what()));
  }
  return JobSpecFromYamlNode(root, fs::absolute(fs::path(path)).parent_path().string(), path);
}

absl::StatusOr<v1::JobSpec> JobSpecFromYamlText(const std::string& yaml,
                                                const std::string& base_dir,
                                                const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return Invalid(absl::StrCat("config: ", source, ": ", e.what()));
  }
  return JobSpecFromYamlNode(root, base_dir, source);
}

}  // namespace attune::client
