#include "server/engine/chat/conversation.h"

#include <array>
#include <nlohmann/json.hpp>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace attune::chat {
namespace {

using json = nlohmann::ordered_json;

constexpr std::array<std::string_view, 4> kRoles = {"system", "user", "assistant", "tool"};

absl::Status Invalid(const std::string& where, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", reason));
}

std::string MessageField(size_t index, absl::string_view field) {
  return absl::StrCat("messages[", index, "].", field);
}

// The role, which must be one of kRoles.
absl::StatusOr<std::string> ReadRole(const json& message, size_t index) {
  auto it = message.find("role");
  if (it == message.end()) return Invalid(MessageField(index, "role"), "missing");
  if (!it->is_string()) {
    return Invalid(MessageField(index, "role"),
                   absl::StrCat("must be a string (got ", it->type_name(), ")"));
  }
  const std::string role = it->get<std::string>();
  for (std::string_view known : kRoles) {
    if (role == known) return role;
  }
  // The role is a user's word, not their data: quoted, but cut short.
  return Invalid(MessageField(index, "role"),
                 absl::StrCat("unknown role '", role.substr(0, 40),
                              "'; expected system, user, assistant or tool"));
}

absl::Status CheckContent(const json& message, size_t index, const std::string& role) {
  auto it = message.find("content");
  const bool calls = role == "assistant" && message.contains("tool_calls");
  if (calls && (it == message.end() || it->is_null())) return absl::OkStatus();
  if (it == message.end()) return Invalid(MessageField(index, "content"), "missing");
  if (!it->is_string()) {
    return Invalid(MessageField(index, "content"),
                   absl::StrCat("must be a string (got ", it->type_name(), ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckWeight(const json& message, size_t index, const std::string& role) {
  auto it = message.find("weight");
  if (it == message.end()) return absl::OkStatus();
  if (role != "assistant") {
    return Invalid(MessageField(index, "weight"), "only assistant messages carry a weight");
  }
  if (!it->is_number() || (it->get<double>() != 0 && it->get<double>() != 1)) {
    return Invalid(MessageField(index, "weight"), "must be 0 or 1");
  }
  return absl::OkStatus();
}

absl::Status CheckMessage(const json& message, size_t index, Conversation& out) {
  if (!message.is_object()) {
    return Invalid(absl::StrCat("messages[", index, "]"),
                   absl::StrCat("must be an object (got ", message.type_name(), ")"));
  }
  ASSIGN_OR_RETURN(const std::string role, ReadRole(message, index));
  RETURN_IF_ERROR(CheckContent(message, index, role));
  RETURN_IF_ERROR(CheckWeight(message, index, role));
  if (message.contains("tool_calls") && !message["tool_calls"].is_array()) {
    return Invalid(MessageField(index, "tool_calls"), "must be a list");
  }
  if (role == "assistant") ++out.assistant_turns;
  return absl::OkStatus();
}

}  // namespace

bool IsConversationRecord(const nlohmann::json& record) {
  return record.is_object() && record.contains("messages");
}

absl::StatusOr<Conversation> ParseConversation(const std::string& line) {
  const json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (record.is_discarded() || !record.is_object() || !record.contains("messages")) {
    return Invalid("messages", "missing; expected {\"messages\": [...]}");
  }
  const json& messages = record.at("messages");
  if (!messages.is_array()) {
    return Invalid("messages", absl::StrCat("must be a list (got ", messages.type_name(), ")"));
  }
  if (messages.empty()) return Invalid("messages", "empty conversation");
  Conversation out;
  for (size_t i = 0; i < messages.size(); ++i) {
    RETURN_IF_ERROR(CheckMessage(messages[i], i, out));
  }
  if (out.assistant_turns == 0) {
    return Invalid("messages",
                   "no assistant turn; at least one assistant message is needed to train on");
  }
  json conversation = {{"messages", messages}};
  if (auto tools = record.find("tools"); tools != record.end() && !tools->is_null()) {
    if (!tools->is_array()) return Invalid("tools", "must be a list");
    conversation["tools"] = *tools;
  }
  out.json = conversation.dump();
  return out;
}

}  // namespace attune::chat
