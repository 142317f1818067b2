// UTF-8 and Unicode helpers shared by the tokenizer's normalizers, pre-tokenizers and models.
//
// Hugging Face `tokenizers` is written in Rust and relies on Rust's `char` predicates
// (`is_whitespace`, `is_alphanumeric`, `is_numeric`, ...) and on the `unicode-normalization`
// crate. These functions reproduce those predicates on top of utf8proc so that our splits match
// the reference. All functions are pure and thread-safe.
#ifndef ATTUNE_SERVER_ENGINE_TOKENIZER_UNICODE_TEXT_H_
#define ATTUNE_SERVER_ENGINE_TOKENIZER_UNICODE_TEXT_H_

#include <string>
#include <string_view>
#include <vector>

namespace attune::engine::tokenization {

// Decodes UTF-8; each invalid byte becomes U+FFFD.
std::vector<char32_t> DecodeUtf8(std::string_view text);
// Appends the UTF-8 encoding of `cp` to `out`.
void AppendUtf8(char32_t cp, std::string* out);
std::string EncodeUtf8(const std::vector<char32_t>& cps);
// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for invalid lead bytes).
int Utf8Length(unsigned char lead);

// Rust's char::is_whitespace (the Unicode White_Space property).
bool IsWhitespace(char32_t c);
// Rust's char::is_numeric (general categories Nd, Nl, No).
bool IsNumeric(char32_t c);
// Rust's char::is_alphanumeric (alphabetic or numeric; alphabetic approximated by L*, Nl).
bool IsAlphanumeric(char32_t c);
// Unicode general category P* (Rust's char::is_punctuation in tokenizers' helpers).
bool IsPunctuation(char32_t c);
// BERT's punctuation: ASCII punctuation or any P* character.
bool IsBertPunctuation(char32_t c);
// General category "C other": Cc, Cf, Cs, Co, Cn.
bool IsOther(char32_t c);
bool IsMarkNonspacing(char32_t c);  // Mn
bool IsMark(char32_t c);            // Mn, Mc, Me
// BERT's CJK ideograph ranges (handle_chinese_chars).
bool IsChineseChar(char32_t c);
// The word characters of the Rust regex `\w` (alphanumeric, marks, connector punctuation).
bool IsWordChar(char32_t c);

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };
// Returns `text` in the given Unicode normal form. Invalid UTF-8 is returned unchanged.
std::string Normalize(std::string_view text, NormalForm form);
// Unicode lowercase of each character (full mapping for U+0130 as Rust does, simple otherwise).
std::string Lowercase(std::string_view text);

}  // namespace attune::engine::tokenization

#endif  // ATTUNE_SERVER_ENGINE_TOKENIZER_UNICODE_TEXT_H_
