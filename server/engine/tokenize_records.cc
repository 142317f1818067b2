// Turning read records into token ids, loss masks and targets (TokenizeRecords in data.h);
// reading and checking the JSONL files is data.cc.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/engine/data.h"

namespace attune::engine {

namespace {

// Where a record came from, for messages: "field: path:line: ...".
struct RecordPlace {
  const std::string& field;
  const std::string& path;
  absl::Status Error(const Record& r, const std::string& reason) const {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", path, ":", r.line, ": ", reason));
  }
};

// A causal-LM example: a prompt (not trained) with its completion and EOS (trained), or a plain
// text trained on every token after the first. Truncated to max_seq_len.
absl::StatusOr<Example> TokenizeCausal(const Record& r, const Tokenizer& tokenizer, int max_seq_len,
                                       int32_t eos_id, const RecordPlace& place) {
  Example e;
  if (!r.prompt.empty() || !r.completion.empty()) {
    Encoding prompt = tokenizer.Encode(r.prompt, SpecialTokens::kAdd);
    // The post-processor may append EOS to the prompt; the completion continues after the
    // prompt's own tokens, so drop a trailing EOS there.
    if (eos_id >= 0 && !prompt.ids.empty() && prompt.ids.back() == eos_id) prompt.ids.pop_back();
    Encoding completion = tokenizer.Encode(r.completion, SpecialTokens::kOmit);
    e.ids = prompt.ids;
    e.loss_mask.assign(prompt.ids.size(), 0);
    for (int32_t id : completion.ids) {
      e.ids.push_back(id);
      e.loss_mask.push_back(1);
    }
    if (eos_id >= 0) {
      e.ids.push_back(eos_id);
      e.loss_mask.push_back(1);
    }
  } else {
    e.ids = tokenizer.Encode(r.text, SpecialTokens::kAdd).ids;
    if (eos_id >= 0 && (e.ids.empty() || e.ids.back() != eos_id)) e.ids.push_back(eos_id);
    e.loss_mask.assign(e.ids.size(), 1);
    if (!e.loss_mask.empty()) e.loss_mask[0] = 0;  // nothing predicts the first token
  }
  if (static_cast<int>(e.ids.size()) > max_seq_len) {
    e.ids.resize(max_seq_len);
    e.loss_mask.resize(max_seq_len);
  }
  bool any = false;
  for (size_t i = 1; i < e.loss_mask.size(); ++i) any = any || e.loss_mask[i];
  if (!any) {
    return place.Error(r,
                       absl::StrCat("no completion tokens left within max_seq_len ", max_seq_len));
  }
  return e;
}

// What the training data's labels are, for messages: their names when they are strings
// ("'negative', 'positive'", the first 10), else the range ("the integers 0..1").
std::string TrainingLabels(const LabelMap& labels) {
  if (labels.names.empty()) return absl::StrCat("the integers 0..", labels.num_labels - 1);
  constexpr size_t kShown = 10;
  std::vector<std::string> quoted;
  for (size_t i = 0; i < labels.names.size() && i < kShown; ++i) {
    quoted.push_back(absl::StrCat("'", labels.names[i], "'"));
  }
  if (labels.names.size() > kShown) {
    quoted.push_back(absl::StrCat("and ", labels.names.size() - kShown, " more"));
  }
  return absl::StrCat("the strings ", absl::StrJoin(quoted, ", "));
}

// The label's class id (classification) or value (regression) of `r`.
absl::Status SetTarget(const Record& r, Task task, const LabelMap& labels, const RecordPlace& place,
                       Example& e) {
  if (task == Task::kRegression) {
    e.target = static_cast<float>(r.label_number);
    return absl::OkStatus();
  }
  if (r.label_is_string) {
    auto it = std::lower_bound(labels.names.begin(), labels.names.end(), r.label_string);
    if (it == labels.names.end() || *it != r.label_string) {
      return place.Error(
          r, absl::StrCat("unknown label '", r.label_string, "' (not in the training data)"));
    }
    e.label = it - labels.names.begin();
    return absl::OkStatus();
  }
  if (!labels.names.empty() || r.label_number < 0 || r.label_number >= labels.num_labels ||
      r.label_number != std::floor(r.label_number)) {
    return place.Error(
        r, absl::StrCat("label ", r.label_number, " is not one of the training labels (",
                        TrainingLabels(labels), ")"));
  }
  e.label = static_cast<int64_t>(r.label_number);
  return absl::OkStatus();
}

// A classification or regression example: the text (or pair) with the model's special tokens,
// truncated to max_seq_len keeping a final </s> or [SEP].
absl::StatusOr<Example> TokenizeLabelled(const Record& r, const Tokenizer& tokenizer, Task task,
                                         const LabelMap& labels, int max_seq_len, int32_t sep_id,
                                         const RecordPlace& place) {
  Example e;
  Encoding enc = r.text_b.empty() ? tokenizer.Encode(r.text, SpecialTokens::kAdd)
                                  : tokenizer.EncodePair(r.text, r.text_b, SpecialTokens::kAdd);
  e.ids = std::move(enc.ids);
  if (static_cast<int>(e.ids.size()) > max_seq_len) {
    // Keep the last token when it is a special end token (</s>, [SEP]) so the model sees the
    // same frame it was pre-trained with.
    const int32_t last = e.ids.back();
    e.ids.resize(max_seq_len);
    if (last == sep_id) e.ids.back() = last;
  }
  if (e.ids.empty()) return place.Error(r, "text encodes to no tokens");
  absl::Status target = SetTarget(r, task, labels, place, e);
  if (!target.ok()) return target;
  return e;
}

// The id of the tokenizer's end-of-segment token (</s> or [SEP]); -1 when it has neither.
int32_t SeparatorId(const Tokenizer& tokenizer) {
  for (const char* end : {"</s>", "[SEP]"}) {
    if (auto id = tokenizer.TokenToId(end); id.has_value()) return *id;
  }
  return -1;
}

}  // namespace

absl::StatusOr<std::vector<Example>> TokenizeRecords(const std::vector<Record>& records,
                                                     const Tokenizer& tokenizer, Task task,
                                                     const LabelMap& labels, int max_seq_len,
                                                     int32_t eos_id, const std::string& field,
                                                     const std::string& path) {
  const RecordPlace place{field, path};
  const int32_t sep_id = SeparatorId(tokenizer);
  std::vector<Example> examples;
  examples.reserve(records.size());
  for (const Record& r : records) {
    absl::StatusOr<Example> e =
        task == Task::kCausalLm
            ? TokenizeCausal(r, tokenizer, max_seq_len, eos_id, place)
            : TokenizeLabelled(r, tokenizer, task, labels, max_seq_len, sep_id, place);
    if (!e.ok()) return e.status();
    examples.push_back(*std::move(e));
  }
  return examples;
}

}  // namespace attune::engine
