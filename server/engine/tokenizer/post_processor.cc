#include "server/engine/tokenizer/post_processor.h"

#include <climits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/engine/tokenizer/json_fields.h"

namespace attune::engine::tokenization {
namespace {

// Token type ids index a model's token_type_embeddings (2 rows in BERT); far above any real one.
constexpr int kMaxTypeId = 65535;

using nlohmann::json;

void Append(Encoding* to, const std::vector<int32_t>& ids, int32_t type_id) {
  to->ids.insert(to->ids.end(), ids.begin(), ids.end());
  to->type_ids.insert(to->type_ids.end(), ids.size(), type_id);
}

void AppendEncoding(Encoding* to, const Encoding& from, int32_t type_id) {
  Append(to, from.ids, type_id);
}

// BERT and RoBERTa: cls A sep [sep_between] B sep, where RoBERTa repeats the separator between
// the sequences. Type ids: 0 for the first part, `pair_type` for the second.
class ClsSepProcessor : public PostProcessor {
 public:
  ClsSepProcessor(int32_t cls, int32_t sep, bool double_sep, int32_t pair_type)
      : cls_(cls), sep_(sep), double_sep_(double_sep), pair_type_(pair_type) {}
  void Process(std::vector<Encoding>* encodings, SpecialTokens special) const override {
    if (special == SpecialTokens::kOmit) {
      // RoBERTa has a single token type: Hugging Face zeroes the type ids even here.
      if (pair_type_ == 0) {
        for (Encoding& e : *encodings) e.type_ids.assign(e.ids.size(), 0);
      }
      return;
    }
    Encoding out;
    Append(&out, {cls_}, 0);
    AppendEncoding(&out, (*encodings)[0], 0);
    Append(&out, {sep_}, 0);
    if (encodings->size() > 1) {
      if (double_sep_) Append(&out, {sep_}, pair_type_);
      AppendEncoding(&out, (*encodings)[1], pair_type_);
      Append(&out, {sep_}, pair_type_);
    }
    *encodings = {std::move(out)};
  }

 private:
  int32_t cls_, sep_;
  bool double_sep_;
  int32_t pair_type_;
};

class TemplateProcessor : public PostProcessor {
 public:
  struct Piece {
    bool is_sequence;
    int sequence;              // 0 for A, 1 for B
    std::vector<int32_t> ids;  // special token ids
    int32_t type_id;
  };
  TemplateProcessor(std::vector<Piece> single, std::vector<Piece> pair)
      : single_(std::move(single)), pair_(std::move(pair)) {}
  void Process(std::vector<Encoding>* encodings, SpecialTokens special) const override {
    const std::vector<Piece>& pieces = encodings->size() > 1 ? pair_ : single_;
    Encoding out;
    for (const Piece& p : pieces) {
      if (p.is_sequence) {
        if (p.sequence < static_cast<int>(encodings->size())) {
          AppendEncoding(&out, (*encodings)[p.sequence], p.type_id);
        }
      } else if (special == SpecialTokens::kAdd) {
        Append(&out, p.ids, p.type_id);
      }
    }
    *encodings = {std::move(out)};
  }

 private:
  std::vector<Piece> single_, pair_;
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts)
      : parts_(std::move(parts)) {}
  void Process(std::vector<Encoding>* encodings, SpecialTokens special) const override {
    for (const auto& p : parts_) p->Process(encodings, special);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

class NoOpProcessor : public PostProcessor {
 public:
  void Process(std::vector<Encoding>*, SpecialTokens) const override {}
};

absl::StatusOr<int32_t> TokenIdPair(const json& config, const std::string& key,
                                    const std::string& what) {
  auto it = config.find(key);
  if (it == config.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer() ||
      (*it)[1].get<int64_t>() < 0 || (*it)[1].get<int64_t>() > INT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", key, "' must be [token, id] with an id in 0..", INT32_MAX));
  }
  return static_cast<int32_t>((*it)[1].get<int64_t>());
}

absl::StatusOr<std::vector<TemplateProcessor::Piece>> ParseTemplate(
    const json& config, const std::string& key,
    const absl::flat_hash_map<std::string, std::vector<int32_t>>& specials) {
  const std::string what = "post_processor TemplateProcessing";
  ASSIGN_OR_RETURN(const json* list, ArrayField(config, key, what));
  std::vector<TemplateProcessor::Piece> pieces;
  for (const json& item : *list) {
    if (item.contains("Sequence")) {
      const json& s = item["Sequence"];
      std::string id = s.value("id", "A");
      ASSIGN_OR_RETURN(int type_id, IntField(s, "type_id", 0, kMaxTypeId, what));
      pieces.push_back({true, id == "B" ? 1 : 0, {}, type_id});
    } else if (item.contains("SpecialToken")) {
      const json& s = item["SpecialToken"];
      std::string id = s.value("id", "");
      auto it = specials.find(id);
      if (it == specials.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": template token '", id, "' is missing from special_tokens"));
      }
      ASSIGN_OR_RETURN(int type_id, IntField(s, "type_id", 0, kMaxTypeId, what));
      pieces.push_back({false, 0, it->second, type_id});
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": each '", key, "' entry must be {\"Sequence\":...} or {\"SpecialToken\":...}"));
    }
  }
  return pieces;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostProcessor>> PostProcessorFromJson(const json& config) {
  if (config.is_null()) return nullptr;
  ASSIGN_OR_RETURN(std::string type, TypeOf(config, "post_processor"));
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const std::string what = "post_processor " + type;
    ASSIGN_OR_RETURN(int32_t cls, TokenIdPair(config, "cls", what));
    ASSIGN_OR_RETURN(int32_t sep, TokenIdPair(config, "sep", what));
    bool roberta = type == "RobertaProcessing";
    return std::make_unique<ClsSepProcessor>(cls, sep, roberta, roberta ? 0 : 1);
  }
  if (type == "TemplateProcessing") {
    absl::flat_hash_map<std::string, std::vector<int32_t>> specials;
    if (config.contains("special_tokens") && config["special_tokens"].is_object()) {
      for (auto it = config["special_tokens"].begin(); it != config["special_tokens"].end(); ++it) {
        ASSIGN_OR_RETURN(specials[it.key()],
                         IntArrayField(it.value(), "ids", INT32_MAX,
                                       "post_processor TemplateProcessing special_tokens"));
      }
    }
    ASSIGN_OR_RETURN(auto single, ParseTemplate(config, "single", specials));
    ASSIGN_OR_RETURN(auto pair, ParseTemplate(config, "pair", specials));
    return std::make_unique<TemplateProcessor>(std::move(single), std::move(pair));
  }
  if (type == "ByteLevel") return std::make_unique<NoOpProcessor>();
  if (type == "Sequence") {
    ASSIGN_OR_RETURN(const json* list, ArrayField(config, "processors", "post_processor Sequence"));
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (const json& item : *list) {
      ASSIGN_OR_RETURN(auto part, PostProcessorFromJson(item));
      if (part != nullptr) parts.push_back(std::move(part));
    }
    return std::make_unique<SequenceProcessor>(std::move(parts));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "post_processor: unsupported type '", type,
      "'; supported: RobertaProcessing, BertProcessing, TemplateProcessing, ByteLevel, Sequence"));
}

}  // namespace attune::engine::tokenization
