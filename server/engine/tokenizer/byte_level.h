// GPT-2's byte-level alphabet: every byte maps to one printable Unicode character, so that
// byte-level BPE vocabularies are plain strings ("Ġ" is the byte 0x20). Used by the ByteLevel
// pre-tokenizer and decoder and by the BPE trainer. Pure functions, thread-safe.
#ifndef ATTUNE_SERVER_ENGINE_TOKENIZER_BYTE_LEVEL_H_
#define ATTUNE_SERVER_ENGINE_TOKENIZER_BYTE_LEVEL_H_

#include <optional>
#include <string>
#include <string_view>

namespace attune::engine::tokenization {

// The character (as UTF-8) that stands for byte `b`.
const std::string& ByteToSymbol(unsigned char b);
// Maps every byte of `text` to its symbol.
std::string BytesToSymbols(std::string_view text);
// Inverse of BytesToSymbols; characters outside the alphabet are copied as they are.
std::string SymbolsToBytes(std::string_view symbols);

// GPT-2's pre-tokenization regex, used by ByteLevel when use_regex is true.
inline constexpr std::string_view kGpt2SplitRegex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

}  // namespace attune::engine::tokenization

#endif  // ATTUNE_SERVER_ENGINE_TOKENIZER_BYTE_LEVEL_H_
