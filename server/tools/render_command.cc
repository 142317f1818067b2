#include "server/tools/render_command.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/engine/chat/chat_renderer.h"
#include "server/engine/chat/chat_template.h"
#include "server/engine/chat/chat_tokens.h"
#include "server/engine/chat/conversation.h"
#include "server/engine/tokenizer/tokenizer.h"

namespace attune::tools {
namespace {

using nlohmann::json;

struct Line {
  int64_t number = 0;
  std::string text;
};

// The `record`-th non-blank line of `path`.
absl::StatusOr<Line> FindRecord(const std::string& path, int record) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("data: cannot open ", path));
  Line line;
  int seen = 0;
  for (std::string text; std::getline(in, text);) {
    ++line.number;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (++seen == record) {
      line.text = std::move(text);
      return line;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("record: ", path, " has ", seen,
                                                 " records; --record ", record, " is past them"));
}

std::string MarkedText(const chat::RenderedChat& rendered) {
  std::string out;
  size_t at = 0;
  for (const auto& [begin, end] : rendered.spans) {
    absl::StrAppend(&out, rendered.text.substr(at, begin - at), "⟦",
                    rendered.text.substr(begin, end - begin), "⟧");
    at = end;
  }
  absl::StrAppend(&out, rendered.text.substr(at));
  return out;
}

std::string IdList(const chat::ChatTokens& tokens) {
  std::string out;
  for (size_t i = 0; i < tokens.ids.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : " ", tokens.ids[i], tokens.mask[i] ? "*" : "");
  }
  return out;
}

}  // namespace

void AddRenderFlags(CLI::App* cmd, RenderFlags* f) {
  cmd->add_option("--model", f->model, "model directory (tokenizer.json, tokenizer_config.json)")
      ->required();
  cmd->add_option("--data", f->data, "JSONL file of {\"messages\": [...]} records")->required();
  cmd->add_option("--record", f->record, "which record, 1-based (default 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--train-on-inputs", f->train_on_inputs, "show the mask of train_on_inputs");
}

absl::StatusOr<std::string> RenderReport(const RenderFlags& f) {
  ASSIGN_OR_RETURN(Line line, FindRecord(f.data, f.record));
  auto at = [&](absl::string_view reason) {
    return absl::InvalidArgumentError(
        absl::StrCat("data: ", f.data, ":", line.number, ": ", reason));
  };
  json record = json::parse(line.text, nullptr, /*allow_exceptions=*/false);
  if (record.is_discarded() || !chat::IsConversationRecord(record)) {
    return at("not a {\"messages\": [...]} record");
  }
  absl::StatusOr<chat::Conversation> conversation = chat::ParseConversation(line.text);
  if (!conversation.ok()) return at(conversation.status().message());
  ASSIGN_OR_RETURN(chat::ChatTemplate chat_template, chat::LoadChatTemplate(f.model, {}));
  ASSIGN_OR_RETURN(auto renderer, chat::ChatRenderer::Create(chat_template, {}));
  absl::StatusOr<chat::RenderedChat> rendered = renderer->Render(conversation->json);
  if (!rendered.ok()) return at(rendered.status().message());
  ASSIGN_OR_RETURN(
      auto tokenizer,
      engine::Tokenizer::FromFile((std::filesystem::path(f.model) / "tokenizer.json").string()));
  chat::ChatTokens tokens = chat::TokenizeRendered(*tokenizer, rendered->text, rendered->spans);
  if (f.train_on_inputs) std::fill(tokens.mask.begin(), tokens.mask.end(), 1);
  if (!tokens.mask.empty()) tokens.mask[0] = 0;  // nothing predicts the first token
  int64_t trained = 0;
  for (uint8_t m : tokens.mask) trained += m;
  return absl::StrCat(
      "record ", f.record, " (", f.data, ":", line.number, "), template ", chat_template.origin,
      ", spans from ", rendered->generation_blocks ? "{% generation %} blocks" : "rendering",
      "\n--- text, trained spans in ⟦ ⟧", f.train_on_inputs ? " (train_on_inputs: all)" : "",
      " ---\n", MarkedText(*rendered), "\n--- ", tokens.ids.size(), " tokens, ", trained,
      " trained (*) ---\n", IdList(tokens), "\n");
}

}  // namespace attune::tools
