#include "server/engine/chat/chat_tokens.h"

#include <algorithm>

namespace attune::chat {
namespace {

using engine::SpecialTokens;

// Where byte `boundary` of `text` falls among `ids` (the whole text's tokens): the number of
// tokens before it, and whether a token straddles it (then that token is at that index).
struct Cut {
  size_t index = 0;
  bool straddles = false;
};

bool EndsWith(const std::vector<int32_t>& ids, const std::vector<int32_t>& tail) {
  return tail.size() <= ids.size() && std::equal(tail.rbegin(), tail.rend(), ids.rbegin());
}

// The boundary falls between tokens when the text after it encodes to the whole text's last
// tokens (the text before it may not: a trailing "\n\n" is one token alone but two before a
// word), or when the text before it encodes to the first ones. Else the first token where the
// text before it differs straddles the boundary.
Cut CutAt(const engine::Tokenizer& tokenizer, std::string_view text,
          const std::vector<int32_t>& ids, size_t boundary) {
  const std::vector<int32_t> after =
      tokenizer.Encode(text.substr(boundary), SpecialTokens::kOmit).ids;
  if (EndsWith(ids, after)) return Cut{ids.size() - after.size(), false};
  const std::vector<int32_t> before =
      tokenizer.Encode(text.substr(0, boundary), SpecialTokens::kOmit).ids;
  const auto [a, b] = std::mismatch(before.begin(), before.end(), ids.begin(), ids.end());
  return Cut{static_cast<size_t>(b - ids.begin()), a != before.end()};
}

}  // namespace

ChatTokens TokenizeRendered(const engine::Tokenizer& tokenizer, std::string_view text,
                            const std::vector<std::pair<size_t, size_t>>& spans) {
  ChatTokens out;
  out.ids = tokenizer.Encode(text, SpecialTokens::kOmit).ids;
  out.mask.assign(out.ids.size(), 0);
  for (const auto& [begin, end] : spans) {
    if (end <= begin) continue;
    const size_t first = CutAt(tokenizer, text, out.ids, begin).index;
    const Cut last_cut = CutAt(tokenizer, text, out.ids, end);
    // The token holding the last byte: the straddling one, else the one just before the cut.
    const size_t stop = last_cut.straddles ? last_cut.index + 1 : last_cut.index;
    for (size_t t = first; t < std::min(stop, out.ids.size()); ++t) out.mask[t] = 1;
  }
  return out;
}

}  // namespace attune::chat
