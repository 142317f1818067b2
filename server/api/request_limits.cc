#include "server/api/request_limits.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace attune::api {
namespace {

absl::Status CheckLength(const std::string& field, const std::string& value, size_t limit) {
  if (value.size() <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": ", value.size(), " characters; at most ", limit, " allowed"));
}

absl::Status CheckCount(const std::string& field, size_t count, size_t limit) {
  if (count <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": ", count, " entries; at most ", limit, " allowed"));
}

// A map key or list element over its limit, quoted (abbreviated) so that the user can find it.
absl::Status CheckElement(const std::string& field, const std::string& what,
                          const std::string& value, size_t limit) {
  if (value.size() <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what, " '", Abbreviate(value),
                                                 "' has ", value.size(), " characters; at most ",
                                                 limit, " allowed"));
}

absl::Status CheckLabels(const google::protobuf::Map<std::string, std::string>& labels) {
  RETURN_IF_ERROR(CheckCount("labels", labels.size(), kMaxLabels));
  for (const auto& [key, value] : labels) {
    RETURN_IF_ERROR(CheckElement("labels", "key", key, kMaxLabelKeyLength));
    if (value.size() > kMaxLabelValueLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels: the value of '", Abbreviate(key), "' has ", value.size(),
                       " characters; at most ", kMaxLabelValueLength, " allowed"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckProjections(const v1::JobSpec& spec) {
  RETURN_IF_ERROR(CheckCount("targets", spec.targets_size(), kMaxTargets));
  for (const std::string& target : spec.targets()) {
    RETURN_IF_ERROR(CheckElement("targets", "projection", target, kMaxProjectionNameLength));
  }
  RETURN_IF_ERROR(CheckCount("lr_ratios", spec.lr_ratios_size(), kMaxLrRatios));
  for (const auto& [key, ratio] : spec.lr_ratios()) {
    RETURN_IF_ERROR(CheckElement("lr_ratios", "key", key, kMaxProjectionNameLength));
  }
  return absl::OkStatus();
}

}  // namespace

std::string Abbreviate(absl::string_view text, size_t max_length) {
  if (text.size() <= max_length) return std::string(text);
  return absl::StrCat(text.substr(0, max_length), "...");
}

absl::Status CheckCreateJobRequestSizes(const v1::CreateJobRequest& request) {
  RETURN_IF_ERROR(CheckLength("request_id", request.request_id(), kMaxRequestIdLength));
  const v1::JobSpec& spec = request.spec();
  RETURN_IF_ERROR(CheckLength("model", spec.model(), kMaxPathLength));
  RETURN_IF_ERROR(CheckLength("train", spec.train(), kMaxPathLength));
  RETURN_IF_ERROR(CheckLength("validation", spec.validation(), kMaxPathLength));
  RETURN_IF_ERROR(CheckLength("name", spec.name(), kMaxNameLength));
  RETURN_IF_ERROR(CheckLabels(spec.labels()));
  return CheckProjections(spec);
}

absl::Status CheckJobId(const std::string& job_id) {
  if (job_id.empty()) return absl::InvalidArgumentError("job_id: required");
  return CheckLength("job_id", job_id, kMaxJobIdLength);
}

absl::Status CheckPageToken(const std::string& page_token) {
  return CheckLength("page_token", page_token, kMaxPageTokenLength);
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseLabelSelector(
    const google::protobuf::RepeatedPtrField<std::string>& selector) {
  RETURN_IF_ERROR(CheckCount("label_selector", selector.size(), kMaxLabelSelectors));
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const std::string& entry : selector) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("label_selector: '", Abbreviate(entry), "' is not key=value"));
    }
    std::string key = entry.substr(0, eq);
    std::string value = entry.substr(eq + 1);
    RETURN_IF_ERROR(CheckElement("label_selector", "key", key, kMaxLabelKeyLength));
    RETURN_IF_ERROR(CheckElement("label_selector", "value", value, kMaxLabelValueLength));
    pairs.emplace_back(std::move(key), std::move(value));
  }
  return pairs;
}

}  // namespace attune::api
