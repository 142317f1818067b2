#include "server/engine/tokenizer/vocab_model.h"

#include <nlohmann/json.hpp>
#include <queue>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "server/engine/tokenizer/json_fields.h"
#include "server/engine/tokenizer/unicode_text.h"

namespace attune::engine::tokenization {
namespace {

using nlohmann::json;

// Hugging Face's BPE cache holds 10,000 words; beyond that words are tokenized without caching.
constexpr size_t kBpeCacheCapacity = 10000;

// Debian's Abseil has its own string_view; flat_hash_map lookups without a copy need one.
absl::string_view AsKey(std::string_view s) { return absl::string_view(s.data(), s.size()); }

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

std::optional<std::string> OptionalString(const json& config, const std::string& key) {
  auto it = config.find(key);
  if (it == config.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// The two tokens of merge number `rank`: "a b", or ["a", "b"] as newer files write it.
absl::StatusOr<std::pair<std::string, std::string>> MergePair(const json& m, int32_t rank) {
  if (m.is_string()) {
    const std::string& line = m.get_ref<const std::string&>();
    size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("model BPE: merge ", rank, " '", line, "' is not \"a b\""));
    }
    return std::make_pair(line.substr(0, space), line.substr(space + 1));
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return std::make_pair(m[0].get<std::string>(), m[1].get<std::string>());
  }
  return absl::InvalidArgumentError(
      absl::StrCat("model BPE: merge ", rank, " must be \"a b\" or [\"a\", \"b\"]"));
}

class BpeModel : public VocabModel {
 public:
  static absl::StatusOr<std::unique_ptr<BpeModel>> Create(const json& config) {
    auto model = std::unique_ptr<BpeModel>(new BpeModel());
    RETURN_IF_ERROR(model->Load(config));
    return model;
  }

  void Tokenize(std::string_view word, std::vector<int32_t>* ids) const override {
    if (word.empty()) return;
    if (ignore_merges_) {
      auto it = vocab_.find(AsKey(word));
      if (it != vocab_.end()) {
        ids->push_back(it->second);
        return;
      }
    }
    std::string key(word);
    {
      absl::ReaderMutexLock lock(&mu_);
      auto it = cache_.find(key);
      if (it != cache_.end()) {
        ids->insert(ids->end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> result = MergeWord(word);
    ids->insert(ids->end(), result.begin(), result.end());
    absl::MutexLock lock(&mu_);
    if (cache_.size() < kBpeCacheCapacity) cache_.emplace(std::move(key), std::move(result));
  }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  struct Symbol {
    int32_t id;
    int prev;
    int next;
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };

  BpeModel() = default;

  absl::Status Load(const json& config) {
    RETURN_IF_ERROR(LoadVocab(config.value("vocab", json()), "model BPE"));
    prefix_ = OptionalString(config, "continuing_subword_prefix").value_or("");
    suffix_ = OptionalString(config, "end_of_word_suffix").value_or("");
    fuse_unk_ = BoolField(config, "fuse_unk", false);
    ignore_merges_ = BoolField(config, "ignore_merges", false);
    byte_fallback_ = BoolField(config, "byte_fallback", false);
    if (auto unk = OptionalString(config, "unk_token")) {
      auto id = TokenToId(*unk);
      if (!id) {
        return absl::InvalidArgumentError(
            absl::StrCat("model BPE: unk_token '", *unk, "' is not in the vocabulary"));
      }
      unk_id_ = *id;
    }
    ASSIGN_OR_RETURN(const json* merges, ArrayField(config, "merges", "model BPE"));
    return LoadMerges(*merges);
  }

  // Reads the merges list; each merge's tokens, and what they merge into, must be in the
  // vocabulary.
  absl::Status LoadMerges(const json& merges) {
    merges_.reserve(merges.size());
    int32_t rank = 0;
    for (const json& m : merges) {
      ASSIGN_OR_RETURN(auto pair, MergePair(m, rank));
      const auto& [a, b] = pair;
      std::string merged = a;
      if (!prefix_.empty() && b.compare(0, prefix_.size(), prefix_) == 0) {
        merged += b.substr(prefix_.size());
      } else {
        merged += b;
      }
      auto ia = TokenToId(a), ib = TokenToId(b), in = TokenToId(merged);
      if (!ia || !ib || !in) {
        return absl::InvalidArgumentError(absl::StrCat("model BPE: merge ", rank, " '", a, " ", b,
                                                       "' uses a token not in the vocabulary"));
      }
      merges_.emplace(PairKey(*ia, *ib), Merge{rank, *in});
      ++rank;
    }
    return absl::OkStatus();
  }

  // The <0xXX> tokens of each byte of `piece`; false if the vocabulary lacks one.
  bool ByteTokens(const std::string& piece, std::vector<int32_t>* ids) const {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (unsigned char b : piece) {
      const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>', '\0'};
      auto it = vocab_.find(absl::string_view(name));
      if (it == vocab_.end()) return false;
      ids->push_back(it->second);
    }
    return true;
  }

  // The symbols of `word` before any merge: its characters' tokens (with the subword prefix and
  // word suffix), byte tokens or the unknown token for those not in the vocabulary.
  std::vector<Symbol> InitialSymbols(std::string_view word) const {
    std::vector<Symbol> symbols;
    std::optional<int32_t> pending_unk;
    auto add = [&symbols](int32_t id) {
      int pos = static_cast<int>(symbols.size());
      if (pos > 0) symbols.back().next = pos;
      symbols.push_back({id, pos - 1, -1, true});
    };
    for (size_t i = 0; i < word.size();) {
      size_t n = std::min<size_t>(Utf8Length(static_cast<unsigned char>(word[i])), word.size() - i);
      std::string piece(word.substr(i, n));
      if (i > 0 && !prefix_.empty()) piece = prefix_ + piece;
      if (i + n == word.size() && !suffix_.empty()) piece += suffix_;
      i += n;
      auto it = vocab_.find(piece);
      if (it != vocab_.end()) {
        if (pending_unk) add(*pending_unk);
        pending_unk.reset();
        add(it->second);
      } else if (std::vector<int32_t> bytes; byte_fallback_ && ByteTokens(piece, &bytes)) {
        for (int32_t id : bytes) add(id);
      } else if (unk_id_) {
        if (pending_unk && !fuse_unk_) add(*pending_unk);
        pending_unk = *unk_id_;
      }
    }
    if (pending_unk) add(*pending_unk);
    return symbols;
  }

  // Merges neighbouring symbols, the pair with the lowest merge rank first (the leftmost among
  // equals), until no pair has a merge. Merged-away symbols stay in `symbols`, marked not alive.
  void ApplyMerges(std::vector<Symbol>* symbols) const {
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
    auto consider = [&](int pos) {
      int next = (*symbols)[pos].next;
      if (next < 0) return;
      auto it = merges_.find(PairKey((*symbols)[pos].id, (*symbols)[next].id));
      if (it != merges_.end()) heap.push({it->second.rank, pos, it->second.new_id});
    };
    for (int i = 0; i + 1 < static_cast<int>(symbols->size()); ++i) consider(i);
    while (!heap.empty()) {
      Candidate top = heap.top();
      heap.pop();
      Symbol& left = (*symbols)[top.pos];
      if (!left.alive || left.next < 0) continue;
      Symbol& right = (*symbols)[left.next];
      auto it = merges_.find(PairKey(left.id, right.id));
      if (it == merges_.end() || it->second.new_id != top.new_id) continue;
      left.id = top.new_id;
      right.alive = false;
      left.next = right.next;
      if (left.next >= 0) (*symbols)[left.next].prev = top.pos;
      if (left.prev >= 0) consider(left.prev);
      consider(top.pos);
    }
  }

  std::vector<int32_t> MergeWord(std::string_view word) const {
    std::vector<Symbol> symbols = InitialSymbols(word);
    ApplyMerges(&symbols);
    std::vector<int32_t> ids;
    for (const Symbol& s : symbols) {
      if (s.alive) ids.push_back(s.id);
    }
    return ids;
  }

  // Constant after construction.
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  std::string prefix_;
  std::string suffix_;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;  // unknown characters become <0xXX> byte tokens

  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_ ABSL_GUARDED_BY(mu_);
};

class WordPieceModel : public VocabModel {
 public:
  static absl::StatusOr<std::unique_ptr<WordPieceModel>> Create(const json& config) {
    auto model = std::unique_ptr<WordPieceModel>(new WordPieceModel());
    RETURN_IF_ERROR(model->LoadVocab(config.value("vocab", json()), "model WordPiece"));
    std::string unk = OptionalString(config, "unk_token").value_or("[UNK]");
    auto unk_id = model->TokenToId(unk);
    if (!unk_id) {
      return absl::InvalidArgumentError(
          absl::StrCat("model WordPiece: unk_token '", unk, "' is not in the vocabulary"));
    }
    model->unk_id_ = *unk_id;
    model->prefix_ = OptionalString(config, "continuing_subword_prefix").value_or("##");
    if (config.contains("max_input_chars_per_word") &&
        config["max_input_chars_per_word"].is_number_integer()) {
      model->max_chars_ = config["max_input_chars_per_word"].get<int64_t>();
    }
    return model;
  }

  void Tokenize(std::string_view word, std::vector<int32_t>* ids) const override {
    if (word.empty()) return;
    if (static_cast<int64_t>(DecodeUtf8(word).size()) > max_chars_) {
      ids->push_back(unk_id_);
      return;
    }
    std::vector<int32_t> pieces;
    std::string candidate;
    size_t start = 0;
    while (start < word.size()) {
      size_t end = word.size();
      bool found = false;
      while (start < end) {
        candidate.clear();
        if (start > 0) candidate = prefix_;
        candidate.append(word.substr(start, end - start));
        auto it = vocab_.find(candidate);
        if (it != vocab_.end()) {
          pieces.push_back(it->second);
          found = true;
          break;
        }
        // Step back one UTF-8 character.
        do {
          --end;
        } while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
      }
      if (!found) {
        ids->push_back(unk_id_);
        return;
      }
      start = end;
    }
    ids->insert(ids->end(), pieces.begin(), pieces.end());
  }

 private:
  WordPieceModel() = default;
  int32_t unk_id_ = 0;
  std::string prefix_;
  int64_t max_chars_ = 100;
};

class WordLevelModel : public VocabModel {
 public:
  static absl::StatusOr<std::unique_ptr<WordLevelModel>> Create(const json& config) {
    auto model = std::unique_ptr<WordLevelModel>(new WordLevelModel());
    RETURN_IF_ERROR(model->LoadVocab(config.value("vocab", json()), "model WordLevel"));
    if (auto unk = OptionalString(config, "unk_token")) model->unk_id_ = model->TokenToId(*unk);
    return model;
  }
  void Tokenize(std::string_view word, std::vector<int32_t>* ids) const override {
    if (word.empty()) return;
    auto it = vocab_.find(AsKey(word));
    if (it != vocab_.end()) {
      ids->push_back(it->second);
    } else if (unk_id_) {
      ids->push_back(*unk_id_);
    }
  }

 private:
  WordLevelModel() = default;
  std::optional<int32_t> unk_id_;
};

}  // namespace

std::optional<int32_t> VocabModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(AsKey(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* VocabModel::IdToToken(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(id_to_token_.size())) return nullptr;
  auto it = vocab_.find(id_to_token_[id]);
  if (it == vocab_.end() || it->second != id) return nullptr;
  return &id_to_token_[id];
}

absl::Status VocabModel::LoadVocab(const json& vocab, const std::string& what) {
  if (!vocab.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": field 'vocab' must be an object"));
  }
  vocab_.reserve(vocab.size());
  // Ids index id_to_token_, so they stay near the entry count (real vocabularies are 0..n-1,
  // with few holes): an id of 2e9 among ten entries would allocate 64 GB (found by the fuzzer).
  constexpr int64_t kMaxVocabIdGap = 65536;
  const int64_t max_id = static_cast<int64_t>(vocab.size()) + kMaxVocabIdGap;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": vocab id of '", it.key(), "' must be a non-negative integer"));
    }
    if (it.value().get<int64_t>() >= max_id) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": vocab id ", it.value().get<int64_t>(), " of '", it.key(), "' is beyond ",
          vocab.size(), " entries; ids must be below the number of entries + ", kMaxVocabIdGap));
    }
    int32_t id = static_cast<int32_t>(it.value().get<int64_t>());
    vocab_[it.key()] = id;
    if (id >= static_cast<int32_t>(id_to_token_.size())) id_to_token_.resize(id + 1);
    id_to_token_[id] = it.key();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<VocabModel>> VocabModelFromJson(const json& config) {
  std::string type;
  if (config.is_object() && config.contains("type") && config["type"].is_string()) {
    type = config["type"].get<std::string>();
  } else if (config.is_object() && config.contains("merges")) {
    type = "BPE";  // Some files omit the type of a BPE model.
  } else if (config.is_object() && config.contains("max_input_chars_per_word")) {
    type = "WordPiece";
  }
  if (type == "BPE") {
    ASSIGN_OR_RETURN(auto model, BpeModel::Create(config));
    return std::unique_ptr<VocabModel>(std::move(model));
  }
  if (type == "WordPiece") {
    ASSIGN_OR_RETURN(auto model, WordPieceModel::Create(config));
    return std::unique_ptr<VocabModel>(std::move(model));
  }
  if (type == "WordLevel") {
    ASSIGN_OR_RETURN(auto model, WordLevelModel::Create(config));
    return std::unique_ptr<VocabModel>(std::move(model));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("model: unsupported type '", type, "'; supported: BPE, WordPiece, WordLevel"));
}

}  // namespace attune::engine::tokenization
