// TrainByteLevelBpeJson (declared in tokenizer.h): a small, deterministic byte-level BPE trainer.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "server/engine/tokenizer/byte_level.h"
#include "server/engine/tokenizer/regex.h"
#include "server/engine/tokenizer/tokenizer.h"
#include "server/engine/tokenizer/unicode_text.h"

namespace attune::engine {
namespace {

using tokenization::ByteToSymbol;

constexpr const char* kSpecials[] = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
constexpr int kNumSpecials = 5;
// A pair must occur at least this often (counting repeated words) to become a merge.
constexpr int64_t kMinPairFrequency = 2;

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

class PairTable {
 public:
  void Add(const Word& w, int word_index, int64_t sign) {
    for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
      uint64_t key = PairKey(w.symbols[i], w.symbols[i + 1]);
      counts_[key] += sign * w.count;
      if (sign > 0) where_[key].insert(word_index);
    }
  }
  // The most frequent pair (ties: smallest left token, then right token), if any is frequent
  // enough.
  std::optional<uint64_t> Best(const std::vector<std::string>& tokens) const {
    std::optional<uint64_t> best;
    int64_t best_count = 0;
    for (const auto& [key, count] : counts_) {
      if (count < kMinPairFrequency) continue;
      if (best && count < best_count) continue;
      if (best && count == best_count) {
        const std::string& a = tokens[key >> 32];
        const std::string& b = tokens[key & 0xFFFFFFFFu];
        const std::string& ba = tokens[*best >> 32];
        const std::string& bb = tokens[*best & 0xFFFFFFFFu];
        if (std::tie(a, b) >= std::tie(ba, bb)) continue;
      }
      best = key;
      best_count = count;
    }
    return best;
  }
  std::vector<int> WordsWith(uint64_t key) const {
    auto it = where_.find(key);
    if (it == where_.end()) return {};
    std::vector<int> words(it->second.begin(), it->second.end());
    std::sort(words.begin(), words.end());
    return words;
  }
  void Erase(uint64_t key) {
    counts_.erase(key);
    where_.erase(key);
  }

 private:
  absl::flat_hash_map<uint64_t, int64_t> counts_;
  absl::flat_hash_map<uint64_t, absl::flat_hash_set<int>> where_;
};

using ojson = nlohmann::ordered_json;

// The starting vocabulary: the specials, then the byte alphabet in byte order.
std::vector<std::string> InitialTokens() {
  std::vector<std::string> tokens(kSpecials, kSpecials + kNumSpecials);
  for (int b = 0; b < 256; ++b) tokens.push_back(ByteToSymbol(static_cast<unsigned char>(b)));
  return tokens;
}

// Words: ByteLevel pre-tokenization (GPT-2 regex, no prefix space), counted, in sorted order, each
// spelled in the byte symbols' ids.
std::vector<Word> CountWords(const std::vector<std::string>& corpus) {
  auto regex = tokenization::Regex::Create(tokenization::kGpt2SplitRegex);
  std::map<std::string, int64_t> word_counts;
  for (const std::string& line : corpus) {
    for (auto [start, end] : (*regex)->FindAll(line)) {
      ++word_counts[line.substr(start, end - start)];
    }
  }
  std::vector<Word> words;
  for (const auto& [text, count] : word_counts) {
    Word w{{}, count};
    for (unsigned char c : text) w.symbols.push_back(kNumSpecials + c);
    words.push_back(std::move(w));
  }
  return words;
}

// Replaces each occurrence of the pair (left, right) in `w`, scanning left to right, by `merged`.
void MergePair(int32_t left, int32_t right, int32_t merged, Word* w) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < w->symbols.size(); ++i) {
    if (i + 1 < w->symbols.size() && w->symbols[i] == left && w->symbols[i + 1] == right) {
      out.push_back(merged);
      ++i;
    } else {
      out.push_back(w->symbols[i]);
    }
  }
  w->symbols = std::move(out);
}

// Learns merges on `words` until `tokens` holds `vocab_size` tokens or no pair is frequent enough;
// appends each new merged token to `tokens` and returns the merges, in the order learned.
std::vector<std::pair<int32_t, int32_t>> LearnMerges(std::vector<Word> words, int vocab_size,
                                                     std::vector<std::string>* tokens) {
  absl::flat_hash_map<std::string, int32_t> ids;
  for (size_t i = 0; i < tokens->size(); ++i) ids[(*tokens)[i]] = static_cast<int32_t>(i);
  PairTable pairs;
  for (size_t i = 0; i < words.size(); ++i) pairs.Add(words[i], static_cast<int>(i), +1);

  std::vector<std::pair<int32_t, int32_t>> merges;
  while (static_cast<int>(tokens->size()) < vocab_size) {
    std::optional<uint64_t> best = pairs.Best(*tokens);
    if (!best) break;
    int32_t left = static_cast<int32_t>(*best >> 32);
    int32_t right = static_cast<int32_t>(*best & 0xFFFFFFFFu);
    std::string merged = (*tokens)[left] + (*tokens)[right];
    auto [it, inserted] = ids.try_emplace(merged, static_cast<int32_t>(tokens->size()));
    if (inserted) tokens->push_back(merged);
    merges.emplace_back(left, right);
    for (int wi : pairs.WordsWith(*best)) {
      pairs.Add(words[wi], wi, -1);
      MergePair(left, right, it->second, &words[wi]);
      pairs.Add(words[wi], wi, +1);
    }
    pairs.Erase(*best);
  }
  return merges;
}

// The added_tokens list: the specials, as RoBERTa's tokenizer.json has them.
ojson AddedTokensJson() {
  ojson added = ojson::array();
  for (int i = 0; i < kNumSpecials; ++i) {
    added.push_back({{"id", i},
                     {"content", kSpecials[i]},
                     {"single_word", false},
                     {"lstrip", std::string(kSpecials[i]) == "<mask>"},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  return added;
}

// The "model" object: a BPE with `tokens` as its vocabulary (ids in order) and `merges`.
ojson BpeModelJson(const std::vector<std::string>& tokens,
                   const std::vector<std::pair<int32_t, int32_t>>& merges) {
  ojson vocab = ojson::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  ojson merge_list = ojson::array();
  for (const auto& [a, b] : merges) merge_list.push_back(tokens[a] + " " + tokens[b]);
  return {{"type", "BPE"},
          {"dropout", nullptr},
          {"unk_token", nullptr},
          {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr},
          {"fuse_unk", false},
          {"byte_fallback", false},
          {"vocab", vocab},
          {"merges", merge_list}};
}

}  // namespace

std::string TrainByteLevelBpeJson(const std::vector<std::string>& corpus, int vocab_size) {
  std::vector<std::string> tokens = InitialTokens();
  std::vector<std::pair<int32_t, int32_t>> merges =
      LearnMerges(CountWords(corpus), vocab_size, &tokens);
  ojson byte_level = {{"type", "ByteLevel"},
                      {"add_prefix_space", false},
                      {"trim_offsets", true},
                      {"use_regex", true}};
  ojson root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", AddedTokensJson()},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level},
      {"post_processor",
       {{"type", "RobertaProcessing"},
        {"sep", {"</s>", 2}},
        {"cls", {"<s>", 0}},
        {"trim_offsets", true},
        {"add_prefix_space", false}}},
      {"decoder", byte_level},
      {"model", BpeModelJson(tokens, merges)},
  };
  return root.dump(1);
}

}  // namespace attune::engine
