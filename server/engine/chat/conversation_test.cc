#include "server/engine/chat/conversation.h"

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"

namespace attune::chat {
namespace {

using nlohmann::json;

absl::Status ErrorOf(const char* record) { return ParseConversation(record).status(); }

TEST(ConversationTest, KeepsMessagesAndToolsAndCountsAssistantTurns) {
  const std::string line = R"({"messages": [
      {"role": "system", "content": "s"}, {"role": "user", "content": "u"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "x"}]},
      {"role": "tool", "tool_call_id": "x", "content": "3"},
      {"role": "assistant", "content": "a", "weight": 0}],
      "tools": [{"type": "function", "function": {"name": "f"}}], "id": 7})";
  absl::StatusOr<Conversation> c = ParseConversation(line);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->assistant_turns, 2);
  // The members keep their order: "role" before "content", "type" before "function".
  EXPECT_EQ(c->json,
            R"({"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"},)"
            R"({"role":"assistant","content":null,"tool_calls":[{"id":"x"}]},)"
            R"({"role":"tool","tool_call_id":"x","content":"3"},)"
            R"({"role":"assistant","content":"a","weight":0}],)"
            R"("tools":[{"type":"function","function":{"name":"f"}}]})");
}

TEST(ConversationTest, RefusesWhatTheIssueLists) {
  EXPECT_EQ(ErrorOf(R"({"messages": []})"),
            absl::InvalidArgumentError("messages: empty conversation"));
  EXPECT_EQ(ErrorOf(R"({"messages": [{"role": "bot", "content": "x"}]})"),
            absl::InvalidArgumentError("messages[0].role: unknown role 'bot'; expected system, "
                                       "user, assistant or tool"));
  EXPECT_EQ(ErrorOf(R"({"messages": [{"role": "user", "content": "x"},
                                     {"role": "assistant", "content": 3}]})"),
            absl::InvalidArgumentError("messages[1].content: must be a string (got number)"));
  EXPECT_EQ(ErrorOf(R"({"messages": [{"role": "user", "content": "x"}]})"),
            absl::InvalidArgumentError("messages: no assistant turn; at least one assistant "
                                       "message is needed to train on"));
  EXPECT_EQ(ErrorOf(R"({"messages": [{"role": "user", "content": "x"},
                                     {"role": "assistant", "content": "y", "weight": 2}]})"),
            absl::InvalidArgumentError("messages[1].weight: must be 0 or 1"));
  EXPECT_EQ(
      ErrorOf(R"({"messages": [{"role": "user", "content": "x", "weight": 1},
                                     {"role": "assistant", "content": "y"}]})"),
      absl::InvalidArgumentError("messages[0].weight: only assistant messages carry a weight"));
  EXPECT_EQ(ErrorOf(R"({"messages": [{"content": "x"}]})"),
            absl::InvalidArgumentError("messages[0].role: missing"));
  EXPECT_EQ(ErrorOf(R"({"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]})"),
            absl::InvalidArgumentError("messages[0].content: missing"));
  EXPECT_EQ(ErrorOf(R"({"messages": "hi"})"),
            absl::InvalidArgumentError("messages: must be a list (got string)"));
  EXPECT_EQ(ErrorOf(R"({"messages": [{"role": "user", "content": "x"},
                                     {"role": "assistant", "content": "y"}], "tools": {}})"),
            absl::InvalidArgumentError("tools: must be a list"));
}

}  // namespace
}  // namespace attune::chat
