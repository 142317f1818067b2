// A rendered conversation as the model sees it: token ids and the assistant mask.
//
// The ids are the tokenizer's for the whole text with no post-processor specials (as
// apply_chat_template: the template writes BOS itself). Added and special tokens that appear in
// the text, the template's or a user's, are matched as added tokens. A token is in the mask when
// it overlaps a trained span, as transformers' char_to_token rule: from the token holding the
// span's first byte to the token holding its last. Token positions are found without offsets by
// encoding the text after a span boundary (when those ids end the whole text's, the boundary
// falls between tokens) and before it (likewise when they begin them; else the first differing
// token straddles the boundary).
#ifndef ATTUNE_SERVER_ENGINE_CHAT_CHAT_TOKENS_H_
#define ATTUNE_SERVER_ENGINE_CHAT_CHAT_TOKENS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "server/engine/tokenizer/tokenizer.h"

namespace attune::chat {

struct ChatTokens {
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;  // 1 on the tokens of the trained spans
};

// Never fails; thread-safe (the tokenizer is).
ChatTokens TokenizeRendered(const engine::Tokenizer& tokenizer, std::string_view text,
                            const std::vector<std::pair<size_t, size_t>>& spans);

}  // namespace attune::chat

#endif  // ATTUNE_SERVER_ENGINE_CHAT_CHAT_TOKENS_H_
