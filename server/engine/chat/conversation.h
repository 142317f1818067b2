// Conversations in the OpenAI messages format, as JSONL training records:
//
//   {"messages": [{"role": "system", "content": "..."},
//                 {"role": "user", "content": "..."},
//                 {"role": "assistant", "content": "...", "weight": 1},
//                 {"role": "assistant", "content": null, "tool_calls": [...]},
//                 {"role": "tool", "tool_call_id": "...", "content": "..."}],
//    "tools": [...]}
//
// Roles are system, user, assistant and tool. Every content is a string, except that an
// assistant message with "tool_calls" may have a null or absent content. "weight" (assistant
// messages only) is 0 or 1; 0 leaves that turn untrained. At least one assistant message.
// Other members ("name", "tool_call_id", "reasoning_content", ...) pass through to the template
// unchanged. Plain C++; thread-compatible.
#ifndef ATTUNE_SERVER_ENGINE_CHAT_CONVERSATION_H_
#define ATTUNE_SERVER_ENGINE_CHAT_CONVERSATION_H_

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "absl/status/statusor.h"

namespace attune::chat {

// One checked conversation: what the template is rendered with.
struct Conversation {
  std::string json;         // {"messages": [...], "tools": [...]} ("tools" when given), compact
  int assistant_turns = 0;  // assistant messages, weight 0 included
};

// Whether a JSONL record is a conversation (it has "messages").
bool IsConversationRecord(const nlohmann::json& record);

// Checks the record on `line` (a JSON object with "messages"), keeping its members in the
// order written: templates print them (tools | tojson), and transformers keeps that order.
// INVALID_ARGUMENT naming the member and what is
// allowed: "messages: empty conversation", "messages[2].role: unknown role 'bot'; expected
// system, user, assistant or tool", "messages[1].content: must be a string (got number)",
// "messages[3].weight: must be 0 or 1", "messages: no assistant turn; at least one assistant
// message is needed to train on", "tools: must be a list". Never quotes contents.
absl::StatusOr<Conversation> ParseConversation(const std::string& line);

}  // namespace attune::chat

#endif  // ATTUNE_SERVER_ENGINE_CHAT_CONVERSATION_H_
