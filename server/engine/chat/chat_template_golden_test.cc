// attune's chat rendering against transformers' on the goldens in tests/golden/chat/: for every
// template folder (made by make_chat_goldens.py on the GPU machine), every conversation's text,
// token ids and assistant mask must be identical, and a conversation the template raises on
// must be refused with INVALID_ARGUMENT.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/engine/chat/chat_renderer.h"
#include "server/engine/chat/chat_template.h"
#include "server/engine/chat/chat_tokens.h"
#include "server/engine/chat/conversation.h"

namespace attune::chat {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kGoldenRoot = "tests/golden/chat";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> Lines(const fs::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::vector<fs::path> TemplateDirs() {
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(kGoldenRoot)) {
    if (fs::exists(entry.path() / "chat_template.jinja")) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

// Mismatches in one template folder, with the first few described.
struct Tally {
  int compared = 0, errors_expected = 0, mismatches = 0;
  std::string first;
  void Mismatch(size_t line, const std::string& what) {
    if (++mismatches <= 3) first += "\n  line " + std::to_string(line + 1) + ": " + what;
  }
};

void CompareOne(ChatRenderer& renderer, const engine::Tokenizer& tokenizer,
                const std::string& variables, const std::string& record, const json& golden,
                size_t line, Tally& tally) {
  absl::StatusOr<Conversation> conversation = ParseConversation(record);
  ASSERT_TRUE(conversation.ok()) << conversation.status();
  absl::StatusOr<RenderedChat> rendered = renderer.Render(conversation->json, variables);
  ++tally.compared;
  if (golden.contains("error")) {
    ++tally.errors_expected;
    if (rendered.ok() || rendered.status().code() != absl::StatusCode::kInvalidArgument) {
      tally.Mismatch(line, "transformers raised " + golden["error"].get<std::string>() +
                               "; attune: " + rendered.status().ToString());
    }
    return;
  }
  if (!rendered.ok()) return tally.Mismatch(line, rendered.status().ToString());
  if (rendered->text != golden["text"].get<std::string>()) return tally.Mismatch(line, "text");
  ChatTokens tokens = TokenizeRendered(tokenizer, rendered->text, rendered->spans);
  if (tokens.ids != golden["ids"].get<std::vector<int32_t>>()) return tally.Mismatch(line, "ids");
  if (tokens.mask != golden["mask"].get<std::vector<uint8_t>>()) tally.Mismatch(line, "mask");
}

TEST(ChatTemplateGoldenTest, EveryTemplateRendersAndMasksAsTransformers) {
  const std::vector<fs::path> dirs = TemplateDirs();
  ASSERT_EQ(dirs.size(), 11u) << "template folders under " << kGoldenRoot;
  for (const fs::path& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    ASSERT_TRUE(fs::exists(dir / "golden.jsonl"))
        << "no goldens: run tests/golden/chat/make_chat_goldens.py OUTDIR on the GPU machine "
           "and copy OUTDIR/"
        << dir.filename().string() << " here";
    absl::StatusOr<ChatTemplate> chat_template = LoadChatTemplate(dir.string(), {});
    ASSERT_TRUE(chat_template.ok()) << chat_template.status();
    auto tokenizer = engine::Tokenizer::FromFile((dir / "tokenizer.json").string());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    auto renderer = ChatRenderer::Create(*chat_template, ChatRendererOptions());
    ASSERT_TRUE(renderer.ok()) << renderer.status();
    const std::string variables = ReadFile(dir / "template_kwargs.json");
    const std::vector<std::string> records = Lines(dir / "conversations.jsonl");
    const std::vector<std::string> goldens = Lines(dir / "golden.jsonl");
    ASSERT_EQ(records.size(), goldens.size());
    ASSERT_GE(records.size(), 200u);
    Tally tally;
    for (size_t i = 0; i < records.size(); ++i) {
      CompareOne(**renderer, **tokenizer, variables, records[i], json::parse(goldens[i]), i, tally);
    }
    EXPECT_EQ(tally.mismatches, 0)
        << tally.mismatches << " of " << tally.compared << " differ:" << tally.first;
    EXPECT_LT(tally.errors_expected, tally.compared / 2) << "most conversations raised";
  }
}

}  // namespace
}  // namespace attune::chat
