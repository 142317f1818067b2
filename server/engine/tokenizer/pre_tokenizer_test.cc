// Tests for the pre-tokenizers on their own, for what the golden tokenizers do not exercise: every
// Split behavior, Metaspace's split and prepend schemes, Digits, and the errors. The expected
// pieces are the examples of Hugging Face tokenizers' documentation (SplitDelimiterBehavior on
// "the-final--countdown"; the pre-tokenizer chapter of the Hugging Face course for Whitespace,
// WhitespaceSplit and Metaspace; Digits on "Call 123 please").
#include "server/engine/tokenizer/pre_tokenizer.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace attune::engine::tokenization {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;

// The pieces `config`'s pre-tokenizer makes of `text`.
std::vector<std::string> Pieces(const json& config, const std::string& text,
                                bool first_starts_text = true) {
  auto pre = PreTokenizerFromJson(config);
  EXPECT_TRUE(pre.ok()) << pre.status();
  if (!pre.ok()) return {};
  std::vector<std::string> pieces = {text};
  (*pre)->PreTokenize(&pieces, first_starts_text);
  return pieces;
}

json SplitOnDash(const std::string& behavior) {
  return {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}};
}

// The message of the error that building `config` gives.
std::string ErrorOf(const json& config) {
  auto pre = PreTokenizerFromJson(config);
  EXPECT_EQ(pre.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(pre.status().message());
}

TEST(SplitTest, EachBehaviorKeepsThePiecesHuggingFaceDocuments) {
  const std::string text = "the-final--countdown";
  EXPECT_THAT(Pieces(SplitOnDash("Removed"), text), ElementsAre("the", "final", "countdown"));
  EXPECT_THAT(Pieces(SplitOnDash("Isolated"), text),
              ElementsAre("the", "-", "final", "-", "-", "countdown"));
  EXPECT_THAT(Pieces(SplitOnDash("MergedWithPrevious"), text),
              ElementsAre("the-", "final-", "-", "countdown"));
  EXPECT_THAT(Pieces(SplitOnDash("MergedWithNext"), text),
              ElementsAre("the", "-final", "-", "-countdown"));
  EXPECT_THAT(Pieces(SplitOnDash("Contiguous"), text),
              ElementsAre("the", "-", "final", "--", "countdown"));
}

TEST(SplitTest, WhitespaceKeepsWordsAndPunctuationWhitespaceSplitOnlyWords) {
  const std::string text = "Let's test my pre-tokenizer.";
  EXPECT_THAT(Pieces({{"type", "Whitespace"}}, text),
              ElementsAre("Let", "'", "s", "test", "my", "pre", "-", "tokenizer", "."));
  EXPECT_THAT(Pieces({{"type", "WhitespaceSplit"}}, text),
              ElementsAre("Let's", "test", "my", "pre-tokenizer."));
}

TEST(DigitsTest, ContiguousUnlessIndividual) {
  EXPECT_THAT(Pieces({{"type", "Digits"}}, "Call 123 please"),
              ElementsAre("Call ", "123", " please"));
  EXPECT_THAT(Pieces({{"type", "Digits"}, {"individual_digits", true}}, "Call 123 please"),
              ElementsAre("Call ", "1", "2", "3", " please"));
}

TEST(MetaspaceTest, ReplacesSpacesPrependsAndSplitsBeforeEachReplacement) {
  const std::string text = "Let's test my pre-tokenizer.";
  EXPECT_THAT(Pieces({{"type", "Metaspace"}}, text),
              ElementsAre("▁Let's", "▁test", "▁my", "▁pre-tokenizer."));
  EXPECT_THAT(Pieces({{"type", "Metaspace"}, {"split", false}}, text),
              ElementsAre("▁Let's▁test▁my▁pre-tokenizer."));
  // "first" prefixes only the piece that starts the text (not one after an added token).
  const json first = {{"type", "Metaspace"}, {"prepend_scheme", "first"}};
  EXPECT_THAT(Pieces(first, "a b"), ElementsAre("▁a", "▁b"));
  EXPECT_THAT(Pieces(first, "a b", /*first_starts_text=*/false), ElementsAre("a", "▁b"));
  EXPECT_THAT(Pieces({{"type", "Metaspace"}, {"prepend_scheme", "never"}}, "a b"),
              ElementsAre("a", "▁b"));
  // Without prepend_scheme, the older add_prefix_space decides.
  EXPECT_THAT(Pieces({{"type", "Metaspace"}, {"add_prefix_space", false}}, "a b"),
              ElementsAre("a", "▁b"));
}

TEST(PreTokenizerErrorTest, MessagesNameTheFieldAndWhatIsAllowed) {
  EXPECT_EQ(ErrorOf({{"type", "UnicodeScripts"}}),
            "pre_tokenizer: unsupported type 'UnicodeScripts'; supported: Sequence, ByteLevel, "
            "Metaspace, Split, Whitespace, WhitespaceSplit, BertPreTokenizer, Punctuation, Digits");
  EXPECT_EQ(ErrorOf({{"type", "Metaspace"}, {"prepend_scheme", "sometimes"}}),
            "pre_tokenizer Metaspace: unknown prepend_scheme 'sometimes'; expected always, first "
            "or never");
  EXPECT_EQ(ErrorOf({{"type", "Metaspace"}, {"replacement", ""}}),
            "pre_tokenizer Metaspace: replacement must not be empty");
  EXPECT_EQ(ErrorOf(SplitOnDash("Odd")),
            "pre_tokenizer Split: unknown behavior '\"Odd\"'; expected Removed, Isolated, "
            "MergedWithPrevious, MergedWithNext or Contiguous");
  EXPECT_EQ(ErrorOf({{"type", "Sequence"}, {"pretokenizers", {{{"type", "Nope"}}}}}),
            "pre_tokenizer: unsupported type 'Nope'; supported: Sequence, ByteLevel, Metaspace, "
            "Split, Whitespace, WhitespaceSplit, BertPreTokenizer, Punctuation, Digits");
}

}  // namespace
}  // namespace attune::engine::tokenization
