#include "server/engine/tokenizer/added_vocabulary.h"

#include <algorithm>
#include <utility>

#include "server/engine/tokenizer/unicode_text.h"

namespace attune::engine::tokenization {
namespace {

// Start of the trailing run of whitespace in `s` (s.size() if none).
size_t TrailingWhitespaceStart(std::string_view s) {
  std::vector<char32_t> cps = DecodeUtf8(s);
  size_t pos = s.size();
  for (auto it = cps.rbegin(); it != cps.rend() && IsWhitespace(*it); ++it) {
    std::string enc;
    AppendUtf8(*it, &enc);
    pos -= enc.size();
  }
  return pos;
}

// Length of the leading run of whitespace in `s`.
size_t LeadingWhitespaceLength(std::string_view s) {
  size_t pos = 0;
  for (char32_t c : DecodeUtf8(s)) {
    if (!IsWhitespace(c)) break;
    std::string enc;
    AppendUtf8(c, &enc);
    pos += enc.size();
  }
  return pos;
}

bool EndsWithWordChar(std::string_view s) {
  if (s.empty()) return false;
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  std::vector<char32_t> last = DecodeUtf8(s.substr(start));
  return !last.empty() && IsWordChar(last.back());
}

bool StartsWithWordChar(std::string_view s) {
  if (s.empty()) return false;
  size_t len = std::min<size_t>(Utf8Length(static_cast<unsigned char>(s[0])), s.size());
  std::vector<char32_t> first = DecodeUtf8(s.substr(0, len));
  return !first.empty() && IsWordChar(first.front());
}

}  // namespace

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    if (t.content.empty()) continue;
    std::string pattern = t.content;
    Matcher* m = &raw_;
    if (t.normalized) {
      m = &normalized_;
      if (normalizer != nullptr) pattern = normalizer->Normalize(pattern);
      if (pattern.empty()) continue;
    }
    m->by_first_byte[static_cast<unsigned char>(pattern[0])].emplace_back(std::move(pattern), i);
  }
  for (Matcher* m : {&raw_, &normalized_}) {
    for (auto& bucket : m->by_first_byte) {
      std::stable_sort(bucket.begin(), bucket.end(), [](const auto& a, const auto& b) {
        return a.first.size() > b.first.size();
      });
    }
  }
}

std::vector<AddedVocabulary::Split> AddedVocabulary::FindMatches(std::string_view text,
                                                                 const Matcher& matcher) const {
  std::vector<Split> splits;
  size_t start_offset = 0;
  size_t i = 0;
  while (i < text.size()) {
    const auto& bucket = matcher.by_first_byte[static_cast<unsigned char>(text[i])];
    const std::pair<std::string, size_t>* found = nullptr;
    for (const auto& candidate : bucket) {
      if (text.compare(i, candidate.first.size(), candidate.first) == 0) {
        found = &candidate;
        break;
      }
    }
    if (found == nullptr) {
      ++i;
      continue;
    }
    size_t start = i;
    size_t stop = i + found->first.size();
    i = stop;  // the next search starts after this match, kept or not
    const AddedToken& token = tokens_[found->second];
    if (token.single_word) {
      bool start_ok = start == 0 || !EndsWithWordChar(text.substr(0, start));
      bool stop_ok = stop == text.size() || !StartsWithWordChar(text.substr(stop));
      if (!start_ok || !stop_ok) continue;
    }
    if (token.lstrip) {
      start = std::max(TrailingWhitespaceStart(text.substr(0, start)), start_offset);
    }
    if (token.rstrip) {
      stop += LeadingWhitespaceLength(text.substr(stop));
      i = std::max(i, stop);
    }
    if (start_offset < start) splits.push_back({std::nullopt, start_offset, start});
    splits.push_back({found->second, start, stop});
    start_offset = stop;
  }
  if (start_offset < text.size()) splits.push_back({std::nullopt, start_offset, text.size()});
  return splits;
}

std::vector<TextPiece> AddedVocabulary::Extract(std::string_view text,
                                                const Normalizer* normalizer) const {
  std::vector<TextPiece> pieces;
  for (const Split& outer : FindMatches(text, raw_)) {
    std::string_view sub = text.substr(outer.start, outer.end - outer.start);
    if (outer.token) {
      pieces.push_back({std::string(sub), tokens_[*outer.token].id});
      continue;
    }
    std::string normalized = normalizer != nullptr ? normalizer->Normalize(sub) : std::string(sub);
    for (const Split& inner : FindMatches(normalized, normalized_)) {
      std::string piece = normalized.substr(inner.start, inner.end - inner.start);
      if (inner.token) {
        pieces.push_back({std::move(piece), tokens_[*inner.token].id});
      } else {
        pieces.push_back({std::move(piece), std::nullopt});
      }
    }
  }
  return pieces;
}

}  // namespace attune::engine::tokenization
