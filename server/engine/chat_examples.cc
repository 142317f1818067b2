#include "server/engine/chat_examples.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/engine/chat/chat_tokens.h"

namespace attune::engine {

bool HasConversations(const std::vector<Record>& records) {
  return std::any_of(records.begin(), records.end(),
                     [](const Record& r) { return !r.conversation.empty(); });
}

Example ChatExample(const chat::RenderedChat& rendered, const Tokenizer& tokenizer,
                    const ChatExampleOptions& options) {
  chat::ChatTokens tokens = chat::TokenizeRendered(tokenizer, rendered.text, rendered.spans);
  Example e;
  e.ids = std::move(tokens.ids);
  e.loss_mask = std::move(tokens.mask);
  if (options.train_on_inputs) std::fill(e.loss_mask.begin(), e.loss_mask.end(), 1);
  if (static_cast<int>(e.ids.size()) > options.max_seq_len) {
    e.ids.resize(options.max_seq_len);
    e.loss_mask.resize(options.max_seq_len);
  }
  if (!e.loss_mask.empty()) e.loss_mask[0] = 0;
  return e;
}

absl::StatusOr<std::vector<Example>> TokenizeConversations(
    const std::vector<Record>& records, chat::ChatRenderer& renderer, const Tokenizer& tokenizer,
    const ChatExampleOptions& options, const std::string& field, const std::string& path) {
  std::vector<Example> examples;
  examples.reserve(records.size());
  for (const Record& r : records) {
    auto error = [&](absl::string_view reason) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", path, ":", r.line, ": ", reason));
    };
    if (r.conversation.empty()) {
      return error("a file with conversations holds only {\"messages\": ...} records");
    }
    absl::StatusOr<chat::RenderedChat> rendered = renderer.Render(r.conversation);
    if (!rendered.ok()) return error(rendered.status().message());
    Example e = ChatExample(*rendered, tokenizer, options);
    if (std::find(e.loss_mask.begin(), e.loss_mask.end(), 1) == e.loss_mask.end()) {
      return error(
          absl::StrCat("no assistant tokens left within max_seq_len ", options.max_seq_len));
    }
    examples.push_back(std::move(e));
  }
  return examples;
}

}  // namespace attune::engine
