// Tokenizers for the models attune fine-tunes, read from Hugging Face `tokenizer.json` files.
//
// A Tokenizer runs Hugging Face's pipeline: added tokens are cut out of the text, the rest is
// normalized, pre-tokenized into words, each word is tokenized by the model (byte-level BPE for
// GPT-2, RoBERTa, Llama 3, Qwen2; WordPiece for BERT), and the post-processor adds special tokens
// (CLS/SEP, BOS/EOS) and type ids. Ids equal those of Hugging Face `tokenizers` (checked against
// golden ids in tests/golden/tokenizer/). Truncation and padding settings in the file are not
// applied; the data pipeline truncates and pads.
//
// Example:
//   ASSIGN_OR_RETURN(auto tok, Tokenizer::FromFile(dir + "/tokenizer.json"));
//   Encoding e = tok->Encode("Hello world", SpecialTokens::kAdd);
//
// This header has no LibTorch or protobuf types, so any layer may include it.
#ifndef ATTUNE_SERVER_ENGINE_TOKENIZER_TOKENIZER_H_
#define ATTUNE_SERVER_ENGINE_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace attune::engine {

namespace tokenization {
class AddedVocabulary;
class Normalizer;
class PreTokenizer;
class PostProcessor;
class VocabModel;
}  // namespace tokenization

// Whether Encode adds the special tokens of the post-processor (CLS/SEP, BOS...).
enum class SpecialTokens { kAdd, kOmit };

// The result of encoding one text or a pair of texts. `type_ids` has one entry per id (0 for the
// first sequence, usually 1 for the second, as the post-processor says).
struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
};

class Tokenizer {
 public:
  // Reads and parses a tokenizer.json file. NOT_FOUND if the file cannot be read;
  // INVALID_ARGUMENT if it is not valid JSON or uses a component this implementation does not
  // support; the message names it, e.g. "pre_tokenizer: unsupported type 'UnicodeScripts'".
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // Same as FromFile, from the JSON text itself.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(const std::string& json_text);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Encodes `text` (UTF-8; invalid bytes are read as U+FFFD). Never fails. Thread-safe: any
  // number of threads may encode at once.
  Encoding Encode(std::string_view text, SpecialTokens special) const;
  // Encodes a pair of texts (e.g. two sentences for classification), without truncation.
  // Thread-safe.
  Encoding EncodePair(std::string_view a, std::string_view b, SpecialTokens special) const;

  // Turns ids back into text with the file's decoder (ByteLevel or WordPiece; tokens joined by
  // spaces otherwise). kOmit skips special added tokens. Unknown ids are skipped. Thread-safe.
  std::string Decode(const std::vector<int32_t>& ids, SpecialTokens special) const;

  // The id of `token` (added tokens first, then the model vocabulary), if any.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The token with id `id`, if any.
  std::optional<std::string> IdToToken(int32_t id) const;
  // One more than the largest id, counting added tokens: the embedding rows a model needs.
  int64_t VocabSize() const;
  // The padding id: "padding.pad_id" if the file sets padding, else the id of the first of
  // "<pad>", "[PAD]", "<|pad|>", "<|finetune_right_pad_id|>" that exists.
  std::optional<int32_t> PadId() const;

 private:
  Tokenizer();
  Encoding EncodeSequence(std::string_view text, int32_t type_id) const;
  Encoding PostProcess(std::vector<Encoding> encodings, SpecialTokens special) const;

  // All constant after construction.
  std::unique_ptr<tokenization::Normalizer> normalizer_;       // may be null
  std::unique_ptr<tokenization::PreTokenizer> pre_tokenizer_;  // may be null
  std::unique_ptr<tokenization::VocabModel> model_;
  std::unique_ptr<tokenization::PostProcessor> post_processor_;  // may be null
  std::unique_ptr<tokenization::AddedVocabulary> added_;
  enum class DecoderKind { kJoin, kByteLevel, kWordPiece };
  DecoderKind decoder_ = DecoderKind::kJoin;
  std::string wordpiece_prefix_ = "##";
  std::optional<int32_t> padding_id_;
};

// Trains a byte-level BPE vocabulary on `corpus` (one text per entry) and returns its
// tokenizer.json text, loadable by Hugging Face (PreTrainedTokenizerFast(tokenizer_file=...)) and
// by Tokenizer::FromJson. RoBERTa layout: ids 0..4 are <s>, <pad>, </s>, <unk>, <mask> (added
// special tokens; <mask> strips whitespace on its left), ids 5..260 the 256 byte symbols in byte
// order, then one token per merge. ByteLevel pre-tokenizer (add_prefix_space=false, GPT-2 regex),
// RobertaProcessing (<s> A </s></s> B </s>), ByteLevel decoder. Merges are learned until the
// vocabulary has `vocab_size` tokens or no pair occurs twice; the most frequent pair wins, ties go
// to the lexicographically smallest (left, right) pair. Deterministic; `vocab_size` below 261
// yields just the specials and bytes. Thread-safe.
std::string TrainByteLevelBpeJson(const std::vector<std::string>& corpus, int vocab_size);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_TOKENIZER_TOKENIZER_H_
