#include "server/engine/tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "server/engine/tokenizer/byte_level.h"
#include "server/engine/tokenizer/json_fields.h"
#include "server/engine/tokenizer/regex.h"
#include "server/engine/tokenizer/unicode_text.h"

namespace attune::engine::tokenization {
namespace {

using nlohmann::json;

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// A byte range of the text and whether it matched the delimiter pattern.
struct Span {
  size_t start;
  size_t end;
  bool is_match;
};

// kContiguous: each run of matches, and each run of non-matches, becomes one part.
std::vector<Span> MergeContiguous(const std::vector<Span>& spans) {
  std::vector<Span> parts;
  bool previous_match = false;
  for (const Span& s : spans) {
    if (s.is_match == previous_match && !parts.empty()) {
      parts.back().end = s.end;
    } else {
      parts.push_back({s.start, s.end, false});
    }
    previous_match = s.is_match;
  }
  return parts;
}

// kMergedWithPrevious: a match joins the part before it (unless that part ends in a match).
std::vector<Span> MergeWithPrevious(const std::vector<Span>& spans) {
  std::vector<Span> parts;
  bool previous_match = false;
  for (const Span& s : spans) {
    if (s.is_match && !previous_match && !parts.empty()) {
      parts.back().end = s.end;
    } else {
      parts.push_back({s.start, s.end, false});
    }
    previous_match = s.is_match;
  }
  return parts;
}

// kMergedWithNext: a match joins the part after it (unless that part starts with a match).
std::vector<Span> MergeWithNext(const std::vector<Span>& spans) {
  std::vector<Span> parts;
  bool previous_match = false;
  for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
    if (it->is_match && !previous_match && !parts.empty()) {
      parts.back().start = it->start;
    } else {
      parts.push_back({it->start, it->end, false});
    }
    previous_match = it->is_match;
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

// Turns the delimiter matches into the pieces kept, following Hugging Face's
// NormalizedString::split: `spans` cover the whole text in order.
void SplitBySpans(std::string_view text, std::vector<Span> spans, SplitBehavior behavior,
                  bool invert, std::vector<std::string>* out) {
  if (invert) {
    for (Span& s : spans) s.is_match = !s.is_match;
  }
  std::vector<Span> parts;  // is_match here means "remove"
  switch (behavior) {
    case SplitBehavior::kRemoved:
      parts = std::move(spans);
      break;
    case SplitBehavior::kIsolated:
      parts = std::move(spans);
      for (Span& s : parts) s.is_match = false;
      break;
    case SplitBehavior::kContiguous:
      parts = MergeContiguous(spans);
      break;
    case SplitBehavior::kMergedWithPrevious:
      parts = MergeWithPrevious(spans);
      break;
    case SplitBehavior::kMergedWithNext:
      parts = MergeWithNext(spans);
      break;
  }
  for (const Span& p : parts) {
    if (!p.is_match && p.end > p.start) out->emplace_back(text.substr(p.start, p.end - p.start));
  }
}

// Spans for a regex: matches, and the gaps between them.
std::vector<Span> RegexSpans(const Regex& regex, std::string_view text) {
  std::vector<Span> spans;
  size_t prev = 0;
  for (auto [start, end] : regex.FindAll(text)) {
    if (start > prev) spans.push_back({prev, start, false});
    spans.push_back({start, end, true});
    prev = end;
  }
  if (prev < text.size()) spans.push_back({prev, text.size(), false});
  return spans;
}

// Spans for a character predicate: each matching character is its own match.
std::vector<Span> CharSpans(const std::function<bool(char32_t)>& pred, std::string_view text) {
  std::vector<Span> spans;
  size_t prev = 0, pos = 0;
  for (char32_t c : DecodeUtf8(text)) {
    size_t len = Utf8Length(static_cast<unsigned char>(text[pos]));
    if (pred(c)) {
      if (pos > prev) spans.push_back({prev, pos, false});
      spans.push_back({pos, pos + len, true});
      prev = pos + len;
    }
    pos += len;
  }
  if (pos > prev) spans.push_back({prev, pos, false});
  return spans;
}

// Applies `split` to every piece.
void ForEachPiece(std::vector<std::string>* pieces,
                  const std::function<void(std::string_view, std::vector<std::string>*)>& split) {
  std::vector<std::string> out;
  out.reserve(pieces->size());
  for (const std::string& p : *pieces) split(p, &out);
  *pieces = std::move(out);
}

class RegexSplit : public PreTokenizer {
 public:
  RegexSplit(std::unique_ptr<Regex> regex, SplitBehavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}
  void PreTokenize(std::vector<std::string>* pieces, bool first_starts_text) const override {
    ForEachPiece(pieces, [&](std::string_view text, std::vector<std::string>* out) {
      SplitBySpans(text, RegexSpans(*regex_, text), behavior_, invert_, out);
    });
  }

 private:
  std::unique_ptr<Regex> regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class CharSplit : public PreTokenizer {
 public:
  CharSplit(std::function<bool(char32_t)> pred, SplitBehavior behavior)
      : pred_(std::move(pred)), behavior_(behavior) {}
  void PreTokenize(std::vector<std::string>* pieces, bool first_starts_text) const override {
    ForEachPiece(pieces, [&](std::string_view text, std::vector<std::string>* out) {
      SplitBySpans(text, CharSpans(pred_, text), behavior_, /*invert=*/false, out);
    });
  }

 private:
  std::function<bool(char32_t)> pred_;
  SplitBehavior behavior_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<Regex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  void PreTokenize(std::vector<std::string>* pieces, bool first_starts_text) const override {
    ForEachPiece(pieces, [&](std::string_view text, std::vector<std::string>* out) {
      std::string s(text);
      if (add_prefix_space_ && (s.empty() || s[0] != ' ')) s.insert(s.begin(), ' ');
      std::vector<std::string> words;
      if (regex_ != nullptr) {
        SplitBySpans(s, RegexSpans(*regex_, s), SplitBehavior::kIsolated, false, &words);
      } else if (!s.empty()) {
        words.push_back(std::move(s));
      }
      for (const std::string& w : words) out->push_back(BytesToSymbols(w));
    });
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;  // null when use_regex is false
};

// SentencePiece-style: spaces become the replacement character ("▁"), which is also prepended
// (always, only to the start of the text, or never); optionally splits before each "▁".
class MetaspacePreTokenizer : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(split) {}
  void PreTokenize(std::vector<std::string>* pieces, bool first_starts_text) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < pieces->size(); ++i) {
      std::string s;
      for (char c : (*pieces)[i]) {
        if (c == ' ') {
          s += replacement_;
        } else {
          s.push_back(c);
        }
      }
      bool prepend = prepend_ == Prepend::kAlways ||
                     (prepend_ == Prepend::kFirst && i == 0 && first_starts_text);
      if (prepend && s.compare(0, replacement_.size(), replacement_) != 0) s = replacement_ + s;
      if (!split_) {
        if (!s.empty()) out.push_back(std::move(s));
        continue;
      }
      std::vector<Span> spans;
      size_t prev = 0;
      for (size_t pos = s.find(replacement_); pos != std::string::npos;
           pos = s.find(replacement_, pos + replacement_.size())) {
        if (pos > prev) spans.push_back({prev, pos, false});
        spans.push_back({pos, pos + replacement_.size(), true});
        prev = pos + replacement_.size();
      }
      if (prev < s.size()) spans.push_back({prev, s.size(), false});
      SplitBySpans(s, std::move(spans), SplitBehavior::kMergedWithNext, false, &out);
    }
    *pieces = std::move(out);
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  void PreTokenize(std::vector<std::string>* pieces, bool first_starts_text) const override {
    for (const auto& p : parts_) p->PreTokenize(pieces, first_starts_text);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

absl::StatusOr<SplitBehavior> BehaviorOf(const json& config, const std::string& what,
                                         SplitBehavior default_value) {
  if (!config.contains("behavior")) return default_value;
  const json& b = config["behavior"];
  std::string name = b.is_string() ? b.get<std::string>() : "";
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return absl::InvalidArgumentError(absl::StrCat(
      what, ": unknown behavior '", b.dump(),
      "'; expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous"));
}

// Rust regex's `\w` and `\s`, spelled out so that PCRE2 matches the same characters.
constexpr std::string_view kWhitespaceRegex =
    "[\\p{L}\\p{Nl}\\p{Nd}\\p{M}\\p{Pc}\\x{200C}\\x{200D}]+|"
    "[^\\p{L}\\p{Nl}\\p{Nd}\\p{M}\\p{Pc}\\x{200C}\\x{200D}\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}"
    "\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}]+";

using PreTokenizerOr = absl::StatusOr<std::unique_ptr<PreTokenizer>>;

PreTokenizerOr SequenceFromJson(const json& config) {
  ASSIGN_OR_RETURN(const json* list, ArrayField(config, "pretokenizers", "pre_tokenizer Sequence"));
  std::vector<std::unique_ptr<PreTokenizer>> parts;
  for (const json& item : *list) {
    ASSIGN_OR_RETURN(auto part, PreTokenizerFromJson(item));
    if (part != nullptr) parts.push_back(std::move(part));
  }
  return std::make_unique<SequencePreTokenizer>(std::move(parts));
}

// Metaspace's "prepend_scheme"; absent, it follows the older "add_prefix_space" (default true).
absl::StatusOr<MetaspacePreTokenizer::Prepend> PrependOf(const json& config) {
  std::string scheme =
      config.value("prepend_scheme",
                   std::string(BoolField(config, "add_prefix_space", true) ? "always" : "never"));
  if (scheme == "always") return MetaspacePreTokenizer::Prepend::kAlways;
  if (scheme == "first") return MetaspacePreTokenizer::Prepend::kFirst;
  if (scheme == "never") return MetaspacePreTokenizer::Prepend::kNever;
  return absl::InvalidArgumentError(
      absl::StrCat("pre_tokenizer Metaspace: unknown prepend_scheme '", scheme,
                   "'; expected always, first or never"));
}

PreTokenizerOr MetaspaceFromJson(const json& config) {
  std::string replacement = config.value("replacement", std::string("\xE2\x96\x81"));
  ASSIGN_OR_RETURN(MetaspacePreTokenizer::Prepend prepend, PrependOf(config));
  if (replacement.empty()) {
    return absl::InvalidArgumentError("pre_tokenizer Metaspace: replacement must not be empty");
  }
  return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), prepend,
                                                 BoolField(config, "split", true));
}

PreTokenizerOr ByteLevelFromJson(const json& config) {
  std::unique_ptr<Regex> regex;
  if (BoolField(config, "use_regex", true)) {
    ASSIGN_OR_RETURN(regex, Regex::Create(kGpt2SplitRegex));
  }
  return std::make_unique<ByteLevelPreTokenizer>(BoolField(config, "add_prefix_space", true),
                                                 std::move(regex));
}

PreTokenizerOr SplitFromJson(const json& config) {
  ASSIGN_OR_RETURN(auto regex, PatternField(config, "pre_tokenizer Split"));
  ASSIGN_OR_RETURN(SplitBehavior behavior,
                   BehaviorOf(config, "pre_tokenizer Split", SplitBehavior::kIsolated));
  return std::make_unique<RegexSplit>(std::move(regex), behavior,
                                      BoolField(config, "invert", false));
}

PreTokenizerOr WhitespaceFromJson(const json&) {
  ASSIGN_OR_RETURN(auto regex, Regex::Create(kWhitespaceRegex));
  return std::make_unique<RegexSplit>(std::move(regex), SplitBehavior::kRemoved,
                                      /*invert=*/true);
}

PreTokenizerOr WhitespaceSplitFromJson(const json&) {
  return std::make_unique<CharSplit>(IsWhitespace, SplitBehavior::kRemoved);
}

PreTokenizerOr BertFromJson(const json&) {
  std::vector<std::unique_ptr<PreTokenizer>> parts;
  parts.push_back(std::make_unique<CharSplit>(IsWhitespace, SplitBehavior::kRemoved));
  parts.push_back(std::make_unique<CharSplit>(IsBertPunctuation, SplitBehavior::kIsolated));
  return std::make_unique<SequencePreTokenizer>(std::move(parts));
}

PreTokenizerOr PunctuationFromJson(const json& config) {
  ASSIGN_OR_RETURN(SplitBehavior behavior,
                   BehaviorOf(config, "pre_tokenizer Punctuation", SplitBehavior::kIsolated));
  return std::make_unique<CharSplit>(IsBertPunctuation, behavior);
}

PreTokenizerOr DigitsFromJson(const json& config) {
  return std::make_unique<CharSplit>(IsNumeric, BoolField(config, "individual_digits", false)
                                                    ? SplitBehavior::kIsolated
                                                    : SplitBehavior::kContiguous);
}

// Each supported "type", with the function that builds it from its JSON object.
struct PreTokenizerType {
  const char* name;
  PreTokenizerOr (*from_json)(const json& config);
};
constexpr PreTokenizerType kPreTokenizerTypes[] = {
    {"Sequence", SequenceFromJson},     {"ByteLevel", ByteLevelFromJson},
    {"Metaspace", MetaspaceFromJson},   {"Split", SplitFromJson},
    {"Whitespace", WhitespaceFromJson}, {"WhitespaceSplit", WhitespaceSplitFromJson},
    {"BertPreTokenizer", BertFromJson}, {"Punctuation", PunctuationFromJson},
    {"Digits", DigitsFromJson},
};

}  // namespace

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizerFromJson(const json& config) {
  if (config.is_null()) return nullptr;
  ASSIGN_OR_RETURN(std::string type, TypeOf(config, "pre_tokenizer"));
  for (const PreTokenizerType& t : kPreTokenizerTypes) {
    if (type == t.name) return t.from_json(config);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "pre_tokenizer: unsupported type '", type, "'; supported: ",
      absl::StrJoin(kPreTokenizerTypes, ", ",
                    [](std::string* out, const PreTokenizerType& t) { out->append(t.name); })));
}

}  // namespace attune::engine::tokenization
