#include "server/engine/tokenizer/json_fields.h"

#include "absl/strings/str_cat.h"

namespace attune::engine::tokenization {

using nlohmann::json;

absl::StatusOr<std::string> TypeOf(const json& config, const std::string& what) {
  if (!config.is_object() || !config.contains("type") || !config["type"].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected an object with a string field 'type'"));
  }
  return config["type"].get<std::string>();
}

absl::StatusOr<const json*> ArrayField(const json& config, const std::string& key,
                                       const std::string& what) {
  auto it = config.find(key);
  if (it == config.end() || !it->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": field '", key, "' must be an array"));
  }
  return &*it;
}

absl::StatusOr<std::string> StringField(const json& config, const std::string& key,
                                        const std::string& what) {
  auto it = config.find(key);
  if (it == config.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": field '", key, "' must be a string"));
  }
  return it->get<std::string>();
}

bool BoolField(const json& config, const std::string& key, bool default_value) {
  auto it = config.find(key);
  if (it == config.end() || !it->is_boolean()) return default_value;
  return it->get<bool>();
}

absl::StatusOr<int> IntField(const json& config, const std::string& key, int default_value,
                             int max_value, const std::string& what) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return default_value;
  if (it->is_number_unsigned() && it->get<uint64_t>() <= static_cast<uint64_t>(max_value)) {
    return static_cast<int>(it->get<uint64_t>());
  }
  if (it->is_number_integer() && it->get<int64_t>() >= 0 && it->get<int64_t>() <= max_value) {
    return static_cast<int>(it->get<int64_t>());
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": field '", key, "' must be an integer in 0..", max_value));
}

absl::StatusOr<std::unique_ptr<Regex>> PatternField(const json& config, const std::string& what) {
  auto it = config.find("pattern");
  if (it != config.end() && it->is_object()) {
    if (it->contains("Regex") && (*it)["Regex"].is_string()) {
      return Regex::Create((*it)["Regex"].get<std::string>());
    }
    if (it->contains("String") && (*it)["String"].is_string()) {
      return Regex::Create(QuoteRegex((*it)["String"].get<std::string>()));
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": field 'pattern' must be {\"String\": ...} or {\"Regex\": ...}"));
}

}  // namespace attune::engine::tokenization
