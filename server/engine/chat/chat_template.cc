#include "server/engine/chat/chat_template.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/confined_file.h"
#include "common/status_macros.h"
#include "server/engine/file_limits.h"

namespace attune::chat {
namespace {

using nlohmann::json;

// A special token as tokenizer_config.json writes it: a string or {"content": ...}.
const json* TokenText(const json& value) {
  if (value.is_string()) return &value;
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return &value["content"];
  }
  return nullptr;
}

json SpecialTokenVariables(const json& config) {
  json variables = json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    auto it = config.find(key);
    if (it == config.end()) continue;
    if (const json* text = TokenText(*it); text != nullptr) variables[key] = *text;
  }
  auto extra = config.find("additional_special_tokens");
  if (extra != config.end() && extra->is_array() && !extra->empty()) {
    json list = json::array();
    for (const json& t : *extra) {
      if (const json* text = TokenText(t); text != nullptr) list.push_back(*text);
    }
    variables["additional_special_tokens"] = list;
  }
  return variables;
}

// tokenizer_config.json's "chat_template": a string, or [{"name": ..., "template": ...}].
absl::StatusOr<std::string> ConfigTemplate(const json& config, const std::string& origin) {
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    for (const json& named : *it) {
      if (named.is_object() && named.value("name", "") == "default" && named.contains("template") &&
          named["template"].is_string()) {
        return named["template"].get<std::string>();
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "model: ", origin, ": chat_template is a list without a template named 'default'"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("model: ", origin, ": chat_template must be a string or a list"));
}

}  // namespace

absl::StatusOr<ChatTemplate> ChatTemplateFromTexts(const std::string& tokenizer_config_json,
                                                   const std::string& jinja_file,
                                                   const std::string& origin) {
  json config = json::parse(tokenizer_config_json, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model: ", origin, ": tokenizer_config.json is not a JSON object"));
  }
  ChatTemplate out;
  out.origin = origin;
  out.variables_json = SpecialTokenVariables(config).dump();
  if (!jinja_file.empty()) {
    out.source = jinja_file;
    return out;
  }
  ASSIGN_OR_RETURN(out.source, ConfigTemplate(config, origin));
  if (out.source.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model: ", origin,
        " has no chat template (no chat_template.jinja, and tokenizer_config.json has no "
        "\"chat_template\"); chat records need one"));
  }
  return out;
}

absl::StatusOr<ChatTemplate> LoadChatTemplate(const std::string& model_dir,
                                              const std::vector<std::string>& data_roots) {
  namespace fs = std::filesystem;
  const std::string config_path = (fs::path(model_dir) / "tokenizer_config.json").string();
  absl::StatusOr<std::string> config =
      ReadInsideRoots(data_roots, config_path, engine::kMaxTokenizerConfigBytes);
  if (!config.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model: chat records need the model's tokenizer_config.json: ", config.status().message()));
  }
  const std::string jinja_path = (fs::path(model_dir) / "chat_template.jinja").string();
  std::error_code ec;
  std::string jinja;
  if (fs::exists(jinja_path, ec)) {
    absl::StatusOr<std::string> text =
        ReadInsideRoots(data_roots, jinja_path, engine::kMaxChatTemplateBytes);
    if (!text.ok())
      return absl::InvalidArgumentError(absl::StrCat("model: ", text.status().message()));
    jinja = *std::move(text);
  }
  return ChatTemplateFromTexts(*config, jinja, jinja.empty() ? config_path : jinja_path);
}

}  // namespace attune::chat
