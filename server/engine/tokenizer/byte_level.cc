#include "server/engine/tokenizer/byte_level.h"

#include <array>

#include "absl/container/flat_hash_map.h"
#include "server/engine/tokenizer/unicode_text.h"

namespace attune::engine::tokenization {
namespace {

struct Alphabet {
  std::array<std::string, 256> symbol;
  absl::flat_hash_map<char32_t, unsigned char> byte_of;
  Alphabet() {
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++);
      AppendUtf8(cp, &symbol[b]);
      byte_of[cp] = static_cast<unsigned char>(b);
    }
  }
};

const Alphabet& GetAlphabet() {
  static const Alphabet* alphabet = new Alphabet();
  return *alphabet;
}

}  // namespace

const std::string& ByteToSymbol(unsigned char b) { return GetAlphabet().symbol[b]; }

std::string BytesToSymbols(std::string_view text) {
  const Alphabet& a = GetAlphabet();
  std::string out;
  out.reserve(text.size() * 2);
  for (char c : text) out.append(a.symbol[static_cast<unsigned char>(c)]);
  return out;
}

std::string SymbolsToBytes(std::string_view symbols) {
  const Alphabet& a = GetAlphabet();
  std::string out;
  for (char32_t c : DecodeUtf8(symbols)) {
    auto it = a.byte_of.find(c);
    if (it != a.byte_of.end()) {
      out.push_back(static_cast<char>(it->second));
    } else {
      AppendUtf8(c, &out);
    }
  }
  return out;
}

}  // namespace attune::engine::tokenization
