// Added tokens: the strings from tokenizer.json's "added_tokens" (special tokens like "<s>",
// "[CLS]", "<|eot_id|>", and user-added words) that are cut out of the text before the model sees
// it and map straight to their ids.
//
// Matching follows Hugging Face: leftmost-longest, non-overlapping; tokens with normalized=false
// are found in the raw text first, the remaining text is normalized, and tokens with
// normalized=true are then found in the normalized text (compared with their normalized content).
// single_word rejects matches touching a word character; lstrip/rstrip absorb neighbouring
// whitespace. Immutable after construction; thread-safe.
#ifndef ATTUNE_SERVER_ENGINE_TOKENIZER_ADDED_VOCABULARY_H_
#define ATTUNE_SERVER_ENGINE_TOKENIZER_ADDED_VOCABULARY_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/engine/tokenizer/normalizer.h"

namespace attune::engine::tokenization {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A piece of input text: either an added token (id set) or normalized text for the model.
struct TextPiece {
  std::string text;
  std::optional<int32_t> id;
};

class AddedVocabulary {
 public:
  // `normalizer` (may be null) is used to normalize the content of normalized tokens; it is not
  // retained.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Splits `text` into added tokens and normalized text pieces, in order. `normalizer` may be
  // null; it must be the one given to the constructor.
  std::vector<TextPiece> Extract(std::string_view text, const Normalizer* normalizer) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // Patterns grouped by first byte, longest first.
  struct Matcher {
    std::array<std::vector<std::pair<std::string, size_t>>, 256> by_first_byte;
  };
  struct Split {
    std::optional<size_t> token;  // index into tokens_
    size_t start;
    size_t end;
  };
  std::vector<Split> FindMatches(std::string_view text, const Matcher& matcher) const;

  // Constant after construction.
  std::vector<AddedToken> tokens_;
  Matcher raw_;         // tokens with normalized=false
  Matcher normalized_;  // tokens with normalized=true, by normalized content
};

}  // namespace attune::engine::tokenization

#endif  // ATTUNE_SERVER_ENGINE_TOKENIZER_ADDED_VOCABULARY_H_
