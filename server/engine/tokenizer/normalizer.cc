#include "server/engine/tokenizer/normalizer.h"

#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "server/engine/tokenizer/json_fields.h"
#include "server/engine/tokenizer/regex.h"
#include "server/engine/tokenizer/unicode_text.h"

namespace attune::engine::tokenization {
namespace {

using nlohmann::json;

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  std::string Normalize(std::string_view text) const override {
    std::string s(text);
    for (const auto& p : parts_) s = p->Normalize(s);
    return s;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  std::string Normalize(std::string_view text) const override {
    return tokenization::Normalize(text, form_);
  }

 private:
  NormalForm form_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  std::string Normalize(std::string_view text) const override { return Lowercase(text); }
};

// Removes combining marks (Mn, Mc, Me); usually follows NFD.
class StripAccentsNormalizer : public Normalizer {
 public:
  std::string Normalize(std::string_view text) const override {
    std::string out;
    for (char32_t c : DecodeUtf8(text)) {
      if (!IsMark(c)) AppendUtf8(c, &out);
    }
    return out;
  }
};

// BERT's normalizer: clean_text (drop NUL, U+FFFD and control characters; whitespace becomes
// ' '), handle_chinese_chars (pad CJK ideographs with spaces), strip_accents (NFD then drop Mn;
// defaults to `lowercase`), lowercase, applied in that order.
class BertNormalizer : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool chinese, bool strip_accents, bool lowercase)
      : clean_text_(clean_text),
        chinese_(chinese),
        strip_accents_(strip_accents),
        lowercase_(lowercase) {}
  std::string Normalize(std::string_view text) const override {
    std::string s;
    for (char32_t c : DecodeUtf8(text)) {
      if (clean_text_) {
        bool control = c != '\t' && c != '\n' && c != '\r' && IsOther(c);
        if (c == 0 || c == 0xFFFD || control) continue;
        if (IsWhitespace(c)) c = ' ';
      }
      if (chinese_ && IsChineseChar(c)) {
        s.push_back(' ');
        AppendUtf8(c, &s);
        s.push_back(' ');
      } else {
        AppendUtf8(c, &s);
      }
    }
    if (strip_accents_) {
      std::string stripped;
      for (char32_t c : DecodeUtf8(tokenization::Normalize(s, NormalForm::kNfd))) {
        if (!IsMarkNonspacing(c)) AppendUtf8(c, &stripped);
      }
      s = std::move(stripped);
    }
    if (lowercase_) s = Lowercase(s);
    return s;
  }

 private:
  bool clean_text_, chinese_, strip_accents_, lowercase_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string Normalize(std::string_view text) const override {
    if (text.empty()) return std::string();
    return prefix_ + std::string(text);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Regex> regex, std::string content)
      : regex_(std::move(regex)), content_(std::move(content)) {}
  std::string Normalize(std::string_view text) const override {
    std::string out;
    size_t prev = 0;
    for (auto [start, end] : regex_->FindAll(text)) {
      out.append(text.substr(prev, start - prev));
      out.append(content_);
      prev = end;
    }
    out.append(text.substr(prev));
    return out;
  }

 private:
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string Normalize(std::string_view text) const override {
    std::vector<char32_t> cps = DecodeUtf8(text);
    size_t b = 0, e = cps.size();
    if (left_) {
      while (b < e && IsWhitespace(cps[b])) ++b;
    }
    if (right_) {
      while (e > b && IsWhitespace(cps[e - 1])) --e;
    }
    return EncodeUtf8(std::vector<char32_t>(cps.begin() + b, cps.begin() + e));
  }

 private:
  bool left_, right_;
};

using NormalizerOr = absl::StatusOr<std::unique_ptr<Normalizer>>;

NormalizerOr SequenceFromJson(const json& config) {
  ASSIGN_OR_RETURN(const json* list, ArrayField(config, "normalizers", "normalizer Sequence"));
  std::vector<std::unique_ptr<Normalizer>> parts;
  for (const json& item : *list) {
    ASSIGN_OR_RETURN(auto part, NormalizerFromJson(item));
    if (part != nullptr) parts.push_back(std::move(part));
  }
  return std::make_unique<SequenceNormalizer>(std::move(parts));
}

template <NormalForm form>
NormalizerOr UnicodeFromJson(const json&) {
  return std::make_unique<UnicodeNormalizer>(form);
}

// A normalizer without settings.
template <typename T>
NormalizerOr PlainFromJson(const json&) {
  return std::make_unique<T>();
}

NormalizerOr BertFromJson(const json& config) {
  bool lowercase = BoolField(config, "lowercase", true);
  bool strip = config.contains("strip_accents") && !config["strip_accents"].is_null()
                   ? config["strip_accents"].get<bool>()
                   : lowercase;
  return std::make_unique<BertNormalizer>(BoolField(config, "clean_text", true),
                                          BoolField(config, "handle_chinese_chars", true), strip,
                                          lowercase);
}

NormalizerOr PrependFromJson(const json& config) {
  ASSIGN_OR_RETURN(std::string prefix, StringField(config, "prepend", "normalizer Prepend"));
  return std::make_unique<PrependNormalizer>(std::move(prefix));
}

NormalizerOr ReplaceFromJson(const json& config) {
  ASSIGN_OR_RETURN(auto regex, PatternField(config, "normalizer Replace"));
  ASSIGN_OR_RETURN(std::string content, StringField(config, "content", "normalizer Replace"));
  return std::make_unique<ReplaceNormalizer>(std::move(regex), std::move(content));
}

NormalizerOr StripFromJson(const json& config) {
  return std::make_unique<StripNormalizer>(BoolField(config, "strip_left", true),
                                           BoolField(config, "strip_right", true));
}

// Each supported "type", with the function that builds it from its JSON object.
struct NormalizerType {
  const char* name;
  NormalizerOr (*from_json)(const json& config);
};
constexpr NormalizerType kNormalizerTypes[] = {
    {"Sequence", SequenceFromJson},
    {"NFC", UnicodeFromJson<NormalForm::kNfc>},
    {"NFD", UnicodeFromJson<NormalForm::kNfd>},
    {"NFKC", UnicodeFromJson<NormalForm::kNfkc>},
    {"NFKD", UnicodeFromJson<NormalForm::kNfkd>},
    {"Lowercase", PlainFromJson<LowercaseNormalizer>},
    {"StripAccents", PlainFromJson<StripAccentsNormalizer>},
    {"BertNormalizer", BertFromJson},
    {"Prepend", PrependFromJson},
    {"Replace", ReplaceFromJson},
    {"Strip", StripFromJson},
};

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> NormalizerFromJson(const json& config) {
  if (config.is_null()) return nullptr;
  ASSIGN_OR_RETURN(std::string type, TypeOf(config, "normalizer"));
  for (const NormalizerType& t : kNormalizerTypes) {
    if (type == t.name) return t.from_json(config);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "normalizer: unsupported type '", type, "'; supported: ",
      absl::StrJoin(kNormalizerTypes, ", ",
                    [](std::string* out, const NormalizerType& t) { out->append(t.name); })));
}

}  // namespace attune::engine::tokenization
