#include "server/engine/tokenizer/tokenizer.h"

#include <climits>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "server/engine/tokenizer/added_vocabulary.h"
#include "server/engine/tokenizer/byte_level.h"
#include "server/engine/tokenizer/json_fields.h"
#include "server/engine/tokenizer/normalizer.h"
#include "server/engine/tokenizer/post_processor.h"
#include "server/engine/tokenizer/pre_tokenizer.h"
#include "server/engine/tokenizer/unicode_text.h"
#include "server/engine/tokenizer/vocab_model.h"

namespace attune::engine {
namespace {

using nlohmann::json;
using tokenization::AddedToken;

// Returns `text` if it is valid UTF-8, otherwise a copy with each invalid byte as U+FFFD.
std::string_view ValidUtf8(std::string_view text, std::string* storage) {
  std::vector<char32_t> cps = tokenization::DecodeUtf8(text);
  std::string round_trip = tokenization::EncodeUtf8(cps);
  if (round_trip == text) return text;
  *storage = std::move(round_trip);
  return *storage;
}

absl::StatusOr<std::vector<AddedToken>> ParseAddedTokens(const json& root) {
  std::vector<AddedToken> tokens;
  auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return tokens;
  if (!it->is_array()) {
    return absl::InvalidArgumentError("added_tokens: must be an array");
  }
  for (const json& t : *it) {
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
        !t.contains("content") || !t["content"].is_string()) {
      return absl::InvalidArgumentError(
          "added_tokens: each entry needs an integer 'id' and a string 'content'");
    }
    AddedToken a;
    ASSIGN_OR_RETURN(a.id, tokenization::IntField(t, "id", 0, INT32_MAX, "added_tokens"));
    a.content = t["content"].get<std::string>();
    a.single_word = t.value("single_word", false);
    a.lstrip = t.value("lstrip", false);
    a.rstrip = t.value("rstrip", false);
    a.special = t.value("special", false);
    a.normalized = t.value("normalized", !a.special);
    tokens.push_back(std::move(a));
  }
  return tokens;
}

// The tokens that `ids` stand for: an added token's content (special ones left out with kOmit),
// else the model's token; unknown ids are skipped.
std::vector<std::string> TokensOf(const std::vector<int32_t>& ids,
                                  const tokenization::AddedVocabulary& added_vocabulary,
                                  const tokenization::VocabModel& model, SpecialTokens special) {
  std::vector<std::string> tokens;
  for (int32_t id : ids) {
    const AddedToken* added = nullptr;
    for (const AddedToken& a : added_vocabulary.tokens()) {
      if (a.id == id) added = &a;
    }
    if (added != nullptr) {
      if (added->special && special == SpecialTokens::kOmit) continue;
      tokens.push_back(added->content);
    } else if (const std::string* t = model.IdToToken(id)) {
      tokens.push_back(*t);
    }
  }
  return tokens;
}

// WordPiece's decoder: a token starting with `prefix` continues the previous one, the others are
// joined by spaces; then the spaces before punctuation and English contractions are removed.
std::string JoinWordPieces(const std::vector<std::string>& tokens, const std::string& prefix) {
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    if (i > 0 && t.compare(0, prefix.size(), prefix) == 0) {
      out += t.substr(prefix.size());
    } else {
      if (i > 0) out += " ";
      out += t;
    }
  }
  return absl::StrReplaceAll(out, {{" .", "."},
                                   {" ?", "?"},
                                   {" !", "!"},
                                   {" ,", ","},
                                   {" ' ", "'"},
                                   {" n't", "n't"},
                                   {" 'm", "'m"},
                                   {" 's", "'s"},
                                   {" 've", "'ve"},
                                   {" 're", "'re"}});
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("tokenizer file '", path, "' cannot be read"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto tok = FromJson(buffer.str());
  if (!tok.ok()) {
    return absl::Status(tok.status().code(), absl::StrCat(path, ": ", tok.status().message()));
  }
  return tok;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(const std::string& json_text) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError("tokenizer.json: not a valid JSON object");
  }
  auto tok = std::unique_ptr<Tokenizer>(new Tokenizer());
  try {
    ASSIGN_OR_RETURN(tok->normalizer_,
                     tokenization::NormalizerFromJson(root.value("normalizer", json())));
    ASSIGN_OR_RETURN(tok->pre_tokenizer_,
                     tokenization::PreTokenizerFromJson(root.value("pre_tokenizer", json())));
    if (!root.contains("model")) {
      return absl::InvalidArgumentError("tokenizer.json: field 'model' is missing");
    }
    ASSIGN_OR_RETURN(tok->model_, tokenization::VocabModelFromJson(root["model"]));
    ASSIGN_OR_RETURN(tok->post_processor_,
                     tokenization::PostProcessorFromJson(root.value("post_processor", json())));
    ASSIGN_OR_RETURN(std::vector<AddedToken> added, ParseAddedTokens(root));
    tok->added_ =
        std::make_unique<tokenization::AddedVocabulary>(std::move(added), tok->normalizer_.get());
    const json decoder = root.value("decoder", json());
    std::string decoder_type = decoder.is_object() ? decoder.value("type", "") : "";
    if (decoder_type == "ByteLevel") {
      tok->decoder_ = DecoderKind::kByteLevel;
    } else if (decoder_type == "WordPiece") {
      tok->decoder_ = DecoderKind::kWordPiece;
      tok->wordpiece_prefix_ = decoder.value("prefix", "##");
    }
    const json padding = root.value("padding", json());
    if (padding.is_object() && padding.contains("pad_id") && !padding["pad_id"].is_null()) {
      ASSIGN_OR_RETURN(int pad_id,
                       tokenization::IntField(padding, "pad_id", 0, INT32_MAX, "padding"));
      tok->padding_id_ = pad_id;
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: ", e.what()));
  }
  return tok;
}

Encoding Tokenizer::EncodeSequence(std::string_view text, int32_t type_id) const {
  std::string storage;
  text = ValidUtf8(text, &storage);
  Encoding e;
  std::vector<std::string> words;
  std::vector<tokenization::TextPiece> pieces = added_->Extract(text, normalizer_.get());
  for (size_t i = 0; i < pieces.size(); ++i) {
    tokenization::TextPiece& piece = pieces[i];
    if (piece.id) {
      e.ids.push_back(*piece.id);
      continue;
    }
    words.clear();
    words.push_back(std::move(piece.text));
    if (pre_tokenizer_ != nullptr)
      pre_tokenizer_->PreTokenize(&words, /*first_starts_text=*/i == 0);
    for (const std::string& w : words) model_->Tokenize(w, &e.ids);
  }
  e.type_ids.assign(e.ids.size(), type_id);
  return e;
}

Encoding Tokenizer::PostProcess(std::vector<Encoding> encodings, SpecialTokens special) const {
  if (post_processor_ != nullptr) post_processor_->Process(&encodings, special);
  Encoding out;
  for (const Encoding& e : encodings) {
    out.ids.insert(out.ids.end(), e.ids.begin(), e.ids.end());
    out.type_ids.insert(out.type_ids.end(), e.type_ids.begin(), e.type_ids.end());
  }
  return out;
}

Encoding Tokenizer::Encode(std::string_view text, SpecialTokens special) const {
  return PostProcess({EncodeSequence(text, 0)}, special);
}

Encoding Tokenizer::EncodePair(std::string_view a, std::string_view b,
                               SpecialTokens special) const {
  return PostProcess({EncodeSequence(a, 0), EncodeSequence(b, 1)}, special);
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids, SpecialTokens special) const {
  std::vector<std::string> tokens = TokensOf(ids, *added_, *model_, special);
  switch (decoder_) {
    case DecoderKind::kByteLevel:
      return tokenization::SymbolsToBytes(absl::StrJoin(tokens, ""));
    case DecoderKind::kWordPiece:
      return JoinWordPieces(tokens, wordpiece_prefix_);
    case DecoderKind::kJoin:
      break;
  }
  return absl::StrJoin(tokens, " ");
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  for (const AddedToken& a : added_->tokens()) {
    if (a.content == token) return a.id;
  }
  return model_->TokenToId(token);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  for (const AddedToken& a : added_->tokens()) {
    if (a.id == id) return a.content;
  }
  if (const std::string* t = model_->IdToToken(id)) return *t;
  return std::nullopt;
}

int64_t Tokenizer::VocabSize() const {
  int64_t size = model_->Size();
  for (const AddedToken& a : added_->tokens()) size = std::max<int64_t>(size, a.id + 1);
  return size;
}

std::optional<int32_t> Tokenizer::PadId() const {
  if (padding_id_) return padding_id_;
  for (const char* name : {"<pad>", "[PAD]", "<|pad|>", "<|finetune_right_pad_id|>"}) {
    if (auto id = TokenToId(name)) return id;
  }
  return std::nullopt;
}

}  // namespace attune::engine
