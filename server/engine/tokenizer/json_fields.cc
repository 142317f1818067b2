#include "server/engine/tokenizer/json_fields.h"

#include <optional>

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

namespace {

// `value` when it is an integer in 0..max_value. Never converts a float or a huge number (that
// is undefined behaviour; UBSan found it in a fuzzed tokenizer.json).
std::optional<int> CheckedInt(const json& value, int max_value) {
  if (value.is_number_unsigned() && value.get<uint64_t>() <= static_cast<uint64_t>(max_value)) {
    return static_cast<int>(value.get<uint64_t>());
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 0 && value.get<int64_t>() <= max_value) {
    return static_cast<int>(value.get<int64_t>());
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<int> IntField(const json& config, const std::string& key, int default_value,
                             int max_value, const std::string& what) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return default_value;
  std::optional<int> value = CheckedInt(*it, max_value);
  if (value.has_value()) return *value;
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": field '", key, "' must be an integer in 0..", max_value));
}

absl::StatusOr<std::vector<int32_t>> IntArrayField(const json& config, const std::string& key,
                                                   int max_value, const std::string& what) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::vector<int32_t>();
  std::vector<int32_t> out;
  if (it->is_array()) {
    for (const json& item : *it) {
      std::optional<int> value = CheckedInt(item, max_value);
      if (!value.has_value()) break;
      out.push_back(*value);
    }
    if (out.size() == it->size()) return out;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": field '", key, "' must be an array of integers in 0..", max_value));
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
