// Conversation records ({"messages": [...]}, data.h) into training examples: each conversation
// rendered with the model's chat template exactly as transformers renders it (chat/), tokenized
// without post-processor specials (the template writes BOS), and trained on its assistant spans
// (the end-of-turn token after each included) or, with train_on_inputs, on every token. Each
// conversation is one Example {ids, loss_mask}; packing keeps conversations apart.
#ifndef ATTUNE_SERVER_ENGINE_CHAT_EXAMPLES_H_
#define ATTUNE_SERVER_ENGINE_CHAT_EXAMPLES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/engine/chat/chat_renderer.h"
#include "server/engine/data.h"
#include "server/engine/tokenizer/tokenizer.h"

namespace attune::engine {

// How conversations become examples.
struct ChatExampleOptions {
  int max_seq_len = 128;         // tokens; longer conversations are truncated
  bool train_on_inputs = false;  // true: loss on every token, not only the assistant's
};

// Whether any of `records` is a conversation.
bool HasConversations(const std::vector<Record>& records);

// The examples of `records` (all conversations; `path` and `field` for messages). INVALID_ARGUMENT
// "field: path:line: the chat template raised: ..." when the template raises or takes too long
// on a record, "field: path:line: no assistant tokens left within max_seq_len N" when truncation
// leaves nothing to train on.
absl::StatusOr<std::vector<Example>> TokenizeConversations(
    const std::vector<Record>& records, chat::ChatRenderer& renderer, const Tokenizer& tokenizer,
    const ChatExampleOptions& options, const std::string& field, const std::string& path);

// One rendered conversation as an example, truncated to options.max_seq_len, loss_mask[0] = 0
// (nothing predicts the first token).
Example ChatExample(const chat::RenderedChat& rendered, const Tokenizer& tokenizer,
                    const ChatExampleOptions& options);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_CHAT_EXAMPLES_H_
