// Training data: JSONL readers, label mapping, tokenization, and deterministic batching.
//
// Plain C++ (no LibTorch): examples are token-id vectors; the trainer turns a `Batch` into
// tensors. Four record shapes are accepted, one JSON object per line:
//   {"text": ..., "label": ...}                       classification / regression
//   {"text_a": ..., "text_b": ..., "label": ...}      sentence pairs
//   {"prompt": ..., "completion": ...}                causal LM, loss on the completion only
//   {"text": ...}                                     causal LM, loss on every token
//   {"messages": [...], "tools": [...]}               causal LM, a conversation rendered with
//                                                     the model's chat template
//                                                     (chat/conversation.h)
// Labels are integers or strings for classification (strings are mapped to ids in sorted order
// and the mapping is saved with the adapter) and numbers for regression.
#ifndef ATTUNE_SERVER_ENGINE_DATA_H_
#define ATTUNE_SERVER_ENGINE_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "server/engine/tokenizer/tokenizer.h"

namespace attune::engine {

// One parsed line of a JSONL file, before tokenization.
struct Record {
  int64_t line = 0;          // 1-based line number in its file
  std::string text;          // "text" or "text_a"
  std::string text_b;        // "text_b"; empty when absent
  std::string prompt;        // "prompt"
  std::string completion;    // "completion"
  std::string conversation;  // "messages" records: chat::Conversation's JSON; else empty
  bool has_label = false;
  bool label_is_string = false;
  std::string label_string;  // when the label is a string
  double label_number = 0;   // when the label is a number
};

// A JSONL file read once: its records, and the sha256 of exactly the bytes they were parsed from.
struct JsonlFile {
  std::vector<Record> records;
  std::string sha256;
};

// Reads every non-blank line of `path`, opened inside `data_roots` when it is opened
// (common/confined_file.h; empty = no root restriction). `field` names the spec field in
// messages. Returns INVALID_ARGUMENT "field: path:line: reason" for a missing file (or a
// directory), a file outside the roots ("train: /d/t.jsonl is outside the data roots (/d)"),
// bad JSON, a record that fits none of the shapes above or not `task`, or a file or a line
// over its limit (file_limits.h: "train: /d/t.jsonl:7: a line of 20000000 bytes; at most
// 16777216 allowed"). Messages never quote the file's lines.
absl::StatusOr<JsonlFile> ReadJsonlFile(const std::string& path, const std::string& field,
                                        Task task, const std::vector<std::string>& data_roots);

// ReadJsonlFile's records, with no root restriction.
absl::StatusOr<std::vector<Record>> ReadJsonl(const std::string& path, const std::string& field,
                                              Task task);

// Classification labels: either all integers (ids are the integers themselves; num_labels =
// max + 1) or all strings (names sorted; id = index). `names` is empty for integer labels.
struct LabelMap {
  std::vector<std::string> names;
  int num_labels = 0;
};

// Builds the label map from the training records. INVALID_ARGUMENT when labels mix types, are
// negative or non-integral, or fewer than two classes appear.
absl::StatusOr<LabelMap> BuildLabelMap(const std::vector<Record>& train, const std::string& field);

struct Example {
  std::vector<int32_t> ids;
  std::vector<uint8_t> loss_mask;  // causal LM: 1 where the token is predicted; else empty
  int64_t label = 0;               // classification
  float target = 0;                // regression
};

// Tokenizes records for `task`, truncating to `max_seq_len`. For causal LM the prompt tokens
// get no loss; `eos_id` (when >= 0) is appended to the completion. A record whose label is not
// in `labels` fails with "field: path:line: unknown label 'x'". `path` is used in messages only.
absl::StatusOr<std::vector<Example>> TokenizeRecords(const std::vector<Record>& records,
                                                     const Tokenizer& tokenizer, Task task,
                                                     const LabelMap& labels, int max_seq_len,
                                                     int32_t eos_id, const std::string& field,
                                                     const std::string& path);

// The order in which examples are visited. Each epoch shuffles with a generator seeded by
// (seed, epoch), groups examples of similar length into batches (length bucketing, which keeps
// padding small), then shuffles the batch order. Same seed, same batches, on any machine.
std::vector<std::vector<int64_t>> EpochBatches(const std::vector<Example>& examples, int batch_size,
                                               uint64_t seed, int64_t epoch);

// Batches for evaluation: in file order, `batch_size` at a time.
std::vector<std::vector<int64_t>> SequentialBatches(int64_t num_examples, int batch_size);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_DATA_H_
