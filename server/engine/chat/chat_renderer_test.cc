#include "server/engine/chat/chat_renderer.h"

#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace attune::chat {
namespace {

constexpr char kChatMl[] =
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
constexpr char kConversation[] =
    R"({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
        {"role": "user", "content": "é"}, {"role": "assistant", "content": "ok", "weight": 0},
        {"role": "user", "content": "again"}, {"role": "assistant", "content": "done"}]})";

std::unique_ptr<ChatRenderer> Start(const std::string& source, ChatRendererOptions options = {}) {
  ChatTemplate t{source, "test", R"({"bos_token": "<s>"})"};
  auto renderer = ChatRenderer::Create(t, options);
  EXPECT_TRUE(renderer.ok()) << renderer.status();
  return renderer.ok() ? *std::move(renderer) : nullptr;
}

std::vector<std::string> SpanTexts(const RenderedChat& r) {
  std::vector<std::string> out;
  for (auto [b, e] : r.spans) out.push_back(r.text.substr(b, e - b));
  return out;
}

TEST(ChatRendererTest, AssistantSpansIncludeTheEndOfTurnAndSkipWeightZero) {
  auto renderer = Start(kChatMl);
  ASSERT_NE(renderer, nullptr);
  absl::StatusOr<RenderedChat> r = renderer->Render(kConversation);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text,
            "<s><|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n"
            "<|im_start|>user\né<|im_end|>\n<|im_start|>assistant\nok<|im_end|>\n"
            "<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\ndone<|im_end|>\n");
  EXPECT_FALSE(r->generation_blocks);
  // Byte offsets: the "é" (two bytes) before the last span must not shift it.
  EXPECT_EQ(SpanTexts(*r), (std::vector<std::string>{"yo<|im_end|>\n", "done<|im_end|>\n"}));
}

TEST(ChatRendererTest, GenerationBlocksAreTheSpans) {
  auto renderer = Start(
      "{% for m in messages %}[{{ m.role }}]{% if m.role == 'assistant' %}{% generation %}"
      "{{ m.content }}</a>{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}");
  ASSERT_NE(renderer, nullptr);
  absl::StatusOr<RenderedChat> r = renderer->Render(kConversation);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->generation_blocks);
  EXPECT_EQ(SpanTexts(*r), (std::vector<std::string>{"yo</a>", "done</a>"}));
}

TEST(ChatRendererTest, ARaisingTemplateIsInvalidArgumentAndTheHelperKeepsServing) {
  auto renderer = Start(
      "{% if messages | length > 2 %}{{ raise_exception('only one turn') }}{% endif %}"
      "{{ messages[0].content }}{{ messages[1].content }}");
  ASSERT_NE(renderer, nullptr);
  EXPECT_EQ(renderer->Render(kConversation).status(),
            absl::InvalidArgumentError("the chat template raised: TemplateError: only one turn"));
  absl::StatusOr<RenderedChat> ok = renderer->Render(
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->text, "ab");
}

TEST(ChatRendererTest, TheSandboxRefusesPythonInternals) {
  auto renderer = Start("{{ messages.__class__.__mro__ }}");
  ASSERT_NE(renderer, nullptr);
  EXPECT_EQ(renderer->Render(kConversation).status(),
            absl::InvalidArgumentError("the chat template raised: SecurityError: access to "
                                       "attribute '__class__' of 'list' object is unsafe."));
}

TEST(ChatRendererTest, AnUnknownTagFailsAtCreate) {
  ChatTemplate t{"{% frobnicate %}", "/m/chat_template.jinja", "{}"};
  EXPECT_EQ(ChatRenderer::Create(t, {}).status(),
            absl::InvalidArgumentError("model: /m/chat_template.jinja: the chat template does not "
                                       "compile: TemplateSyntaxError: Encountered unknown tag "
                                       "'frobnicate'."));
}

TEST(ChatRendererTest, ATemplateThatNeverEndsIsStoppedAtTheDeadline) {
  ChatRendererOptions options;
  options.timeout = absl::Seconds(2);
  auto renderer = Start(
      "{% for i in range(99999) %}{% for j in range(99999) %}{% for k in range(99999) %}"
      "{% endfor %}{% endfor %}{% endfor %}{{ messages[0].content }}",
      options);
  ASSERT_NE(renderer, nullptr);
  const absl::Time start = absl::Now();
  EXPECT_EQ(renderer->Render(kConversation).status(),
            absl::InvalidArgumentError("the chat template took longer than 2s"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(ChatRendererTest, AMissingInterpreterIsFailedPrecondition) {
  ChatRendererOptions options;
  options.python = "/nonexistent/python3";
  ChatTemplate t{kChatMl, "test", "{}"};
  EXPECT_EQ(ChatRenderer::Create(t, options).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace attune::chat
