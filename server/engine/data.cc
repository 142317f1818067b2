#include "server/engine/data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/confined_file.h"
#include "common/sha256.h"
#include "nlohmann/json.hpp"
#include "server/engine/chat/conversation.h"
#include "server/engine/file_limits.h"

namespace attune::engine {
namespace {

using nlohmann::json;

absl::Status LineError(const std::string& field, const std::string& path, int64_t line,
                       const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", path, ":", line, ": ", reason));
}

// Reads an optional string member; a present non-string value is an error.
absl::Status ReadString(const json& object, const char* key, std::string* out, bool* present) {
  auto it = object.find(key);
  *present = it != object.end();
  if (!*present) return absl::OkStatus();
  if (!it->is_string())
    return absl::InvalidArgumentError(absl::StrCat("'", key, "' must be a string"));
  *out = it->get<std::string>();
  return absl::OkStatus();
}

// Fisher-Yates with our own index draw, so the order does not depend on the standard library.
template <typename T>
void Shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(v[i], v[j]);
  }
}

}  // namespace

namespace {

// Which of the record's text members were present.
struct Present {
  bool text = false, text_a = false, text_b = false, prompt = false, completion = false;
};

// The string members: text (or text_a), text_b, prompt, completion. The reason on a non-string.
absl::Status ReadTexts(const json& object, Record& r, Present& has) {
  for (auto [key, out, present] :
       {std::tuple{"text", &r.text, &has.text}, std::tuple{"text_b", &r.text_b, &has.text_b},
        std::tuple{"prompt", &r.prompt, &has.prompt},
        std::tuple{"completion", &r.completion, &has.completion}}) {
    absl::Status s = ReadString(object, key, out, present);
    if (!s.ok()) return s;
  }
  if (!has.text) return ReadString(object, "text_a", &r.text, &has.text_a);
  return absl::OkStatus();
}

// The optional label: a string, or a finite number. The reason otherwise.
absl::Status ReadLabel(const json& object, Record& r) {
  auto label = object.find("label");
  if (label == object.end()) return absl::OkStatus();
  r.has_label = true;
  if (label->is_string()) {
    r.label_is_string = true;
    r.label_string = label->get<std::string>();
  } else if (label->is_number()) {
    r.label_number = label->get<double>();
    if (!std::isfinite(r.label_number)) {
      return absl::InvalidArgumentError("'label' is not a finite number");
    }
  } else {
    return absl::InvalidArgumentError("'label' must be a number or a string");
  }
  return absl::OkStatus();
}

// Whether the record's members fit `task`; the reason when they do not.
absl::Status CheckShape(const Record& r, const Present& has, Task task) {
  const bool has_first = has.text || has.text_a;
  if (has.text_b && !has_first) return absl::InvalidArgumentError("'text_b' without 'text_a'");
  switch (task) {
    case Task::kSequenceClassification:
    case Task::kRegression:
      if (!has_first) {
        return absl::InvalidArgumentError(
            "missing 'text' (or 'text_a'); expected {\"text\": ..., \"label\": ...}");
      }
      if (!r.has_label) return absl::InvalidArgumentError("missing 'label'");
      if (task == Task::kRegression && r.label_is_string) {
        return absl::InvalidArgumentError("regression needs a numeric 'label'");
      }
      return absl::OkStatus();
    case Task::kCausalLm:
      if (has.prompt != has.completion) {
        return absl::InvalidArgumentError("'prompt' and 'completion' come together");
      }
      if (!has.prompt && !has.text) {
        return absl::InvalidArgumentError("missing 'text' or 'prompt'/'completion' for causal-lm");
      }
      return absl::OkStatus();
    case Task::kUnspecified:
      break;
  }
  return absl::InvalidArgumentError("task: unspecified");
}

// One line's record; INVALID_ARGUMENT "field: path:line: reason" when it is not one.
absl::StatusOr<Record> ParseRecord(const std::string& text, int64_t line_no,
                                   const std::string& field, const std::string& path, Task task) {
  json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) return LineError(field, path, line_no, "not valid JSON");
  if (!object.is_object()) return LineError(field, path, line_no, "not a JSON object");
  Record r;
  r.line = line_no;
  if (chat::IsConversationRecord(object)) {
    if (task != Task::kCausalLm) {
      return LineError(field, path, line_no, "'messages' records are for causal-lm");
    }
    absl::StatusOr<chat::Conversation> conversation = chat::ParseConversation(text);
    if (!conversation.ok()) {
      return LineError(field, path, line_no, std::string(conversation.status().message()));
    }
    r.conversation = std::move(conversation->json);
    return r;
  }
  Present has;
  absl::Status s = ReadTexts(object, r, has);
  if (s.ok()) s = ReadLabel(object, r);
  if (s.ok()) s = CheckShape(r, has, task);
  if (s.ok()) return r;
  if (task == Task::kUnspecified && s.message() == "task: unspecified") return s;
  return LineError(field, path, line_no, std::string(s.message()));
}

// The bytes of the JSONL file `path`, opened inside `data_roots`; INVALID_ARGUMENT naming
// `field` and the file (never quoting it) otherwise.
absl::StatusOr<std::string> ReadJsonlBytes(const std::string& path, const std::string& field,
                                           const std::vector<std::string>& data_roots) {
  absl::StatusOr<std::string> text = ReadInsideRoots(data_roots, path, kMaxJsonlFileBytes);
  if (text.ok()) return text;
  if (absl::IsNotFound(text.status())) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": cannot open ", path));
  }
  // A directory inside the roots is the user's mistake: say what it is.
  std::error_code ec;
  if (ResolveInsideRoots(data_roots, path).ok() && std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", path, " is a directory; expected a JSONL file"));
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", text.status().message()));
}

// Every non-blank line of `text` (the file `path`) as a record.
absl::StatusOr<std::vector<Record>> ParseJsonl(const std::string& text, const std::string& path,
                                               const std::string& field, Task task) {
  std::vector<Record> records;
  int64_t line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == absl::string_view::npos) continue;
    if (static_cast<int64_t>(line.size()) > kMaxJsonlLineBytes) {
      return LineError(field, path, line_no,
                       absl::StrCat("a line of ", line.size(), " bytes; at most ",
                                    kMaxJsonlLineBytes, " allowed"));
    }
    absl::StatusOr<Record> record = ParseRecord(std::string(line), line_no, field, path, task);
    if (!record.ok()) return record.status();
    records.push_back(*std::move(record));
  }
  if (records.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", path, " has no records"));
  }
  return records;
}

}  // namespace

absl::StatusOr<JsonlFile> ReadJsonlFile(const std::string& path, const std::string& field,
                                        Task task, const std::vector<std::string>& data_roots) {
  absl::StatusOr<std::string> text = ReadJsonlBytes(path, field, data_roots);
  if (!text.ok()) return text.status();
  JsonlFile file;
  absl::StatusOr<std::vector<Record>> records = ParseJsonl(*text, path, field, task);
  if (!records.ok()) return records.status();
  file.records = *std::move(records);
  Sha256 digest;
  digest.Update(text->data(), text->size());
  absl::StatusOr<std::string> hash = digest.HexDigest();
  if (!hash.ok()) return hash.status();
  file.sha256 = *std::move(hash);
  return file;
}

absl::StatusOr<std::vector<Record>> ReadJsonl(const std::string& path, const std::string& field,
                                              Task task) {
  absl::StatusOr<JsonlFile> file = ReadJsonlFile(path, field, task, {});
  if (!file.ok()) return file.status();
  return std::move(file->records);
}

absl::StatusOr<LabelMap> BuildLabelMap(const std::vector<Record>& train, const std::string& field) {
  LabelMap map;
  if (train.empty()) return map;
  const bool strings = train.front().label_is_string;
  std::set<std::string> names;
  int64_t max_id = -1;
  for (const Record& r : train) {
    if (r.label_is_string != strings) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": line ", r.line, ": labels mix strings and numbers; use one kind"));
    }
    if (strings) {
      names.insert(r.label_string);
    } else {
      if (r.label_number < 0 || r.label_number != std::floor(r.label_number) ||
          r.label_number > 1e6) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ": line ", r.line, ": classification label ", r.label_number,
                         " must be a non-negative integer or a string"));
      }
      max_id = std::max<int64_t>(max_id, static_cast<int64_t>(r.label_number));
    }
  }
  if (strings) {
    map.names.assign(names.begin(), names.end());
    map.num_labels = static_cast<int>(map.names.size());
  } else {
    map.num_labels = static_cast<int>(max_id + 1);
  }
  if (map.num_labels < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": classification needs at least two classes; found ", map.num_labels));
  }
  return map;
}

std::vector<std::vector<int64_t>> EpochBatches(const std::vector<Example>& examples, int batch_size,
                                               uint64_t seed, int64_t epoch) {
  std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch));
  std::vector<int64_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  Shuffle(order, rng);
  // Length bucketing: within windows of 50 batches, sort by length, then cut into batches.
  const size_t window = static_cast<size_t>(batch_size) * 50;
  for (size_t start = 0; start < order.size(); start += window) {
    const size_t end = std::min(order.size(), start + window);
    std::stable_sort(order.begin() + start, order.begin() + end, [&](int64_t a, int64_t b) {
      return examples[a].ids.size() < examples[b].ids.size();
    });
  }
  std::vector<std::vector<int64_t>> batches;
  for (size_t start = 0; start < order.size(); start += batch_size) {
    const size_t end = std::min(order.size(), start + static_cast<size_t>(batch_size));
    batches.emplace_back(order.begin() + start, order.begin() + end);
  }
  Shuffle(batches, rng);
  return batches;
}

std::vector<std::vector<int64_t>> SequentialBatches(int64_t num_examples, int batch_size) {
  std::vector<std::vector<int64_t>> batches;
  for (int64_t start = 0; start < num_examples; start += batch_size) {
    std::vector<int64_t> batch;
    for (int64_t i = start; i < std::min(num_examples, start + batch_size); ++i) batch.push_back(i);
    batches.push_back(std::move(batch));
  }
  return batches;
}

}  // namespace attune::engine
