#include "server/engine/data.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "server/engine/file_limits.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;

std::string WriteFile(const std::string& name, const std::string& text) {
  fs::path path =
      fs::temp_directory_path() / ("attune_data_test_" + std::to_string(::getpid()) + name);
  std::ofstream(path) << text;
  return path.string();
}

TEST(ReadJsonlTest, ReadsShapesAndSkipsBlankLines) {
  std::string path = WriteFile("ok.jsonl",
                               "{\"text\": \"good\", \"label\": \"pos\"}\n\n"
                               "{\"text_a\": \"a\", \"text_b\": \"b\", \"label\": 1}\n");
  auto records = ReadJsonl(path, "train", Task::kSequenceClassification);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].text, "good");
  EXPECT_TRUE((*records)[0].label_is_string);
  EXPECT_EQ((*records)[1].line, 3);
  EXPECT_EQ((*records)[1].text_b, "b");
  EXPECT_EQ((*records)[1].label_number, 1);
}

TEST(ReadJsonlTest, MalformedLineNamesFileAndLine) {
  std::string path = WriteFile("bad.jsonl", "{\"text\": \"x\", \"label\": 0}\n{\"text\": oops}\n");
  auto records = ReadJsonl(path, "train", Task::kSequenceClassification);
  EXPECT_EQ(records.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(records.status().message()), "train: " + path + ":2: not valid JSON");

  path = WriteFile("nolabel.jsonl", "{\"text\": \"x\"}\n");
  records = ReadJsonl(path, "validation", Task::kSequenceClassification);
  EXPECT_EQ(std::string(records.status().message()), "validation: " + path + ":1: missing 'label'");

  path = WriteFile("strlabel.jsonl", "{\"text\": \"x\", \"label\": \"high\"}\n");
  records = ReadJsonl(path, "train", Task::kRegression);
  EXPECT_EQ(records.status().code(), absl::StatusCode::kInvalidArgument);

  path = WriteFile("prompt.jsonl", "{\"prompt\": \"x\"}\n");
  records = ReadJsonl(path, "train", Task::kCausalLm);
  EXPECT_EQ(records.status().code(), absl::StatusCode::kInvalidArgument);

  records = ReadJsonl("/nonexistent/x.jsonl", "train", Task::kCausalLm);
  EXPECT_EQ(std::string(records.status().message()), "train: cannot open /nonexistent/x.jsonl");
}

// Limits (file_limits.h), checked before a record is parsed: a line over kMaxJsonlLineBytes
// names its line; a file over kMaxJsonlFileBytes (sparse: no disk, and never read) its size.
TEST(ReadJsonlTest, LineAndFileOverTheirLimitsAreRefused) {
  const std::string long_text(kMaxJsonlLineBytes, 'a');
  std::string path =
      WriteFile("longline.jsonl", "{\"text\": \"x\"}\n{\"text\": \"" + long_text + "\"}\n");
  auto records = ReadJsonl(path, "train", Task::kCausalLm);
  EXPECT_EQ(records.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(records.status().message()),
            absl::StrCat("train: ", path, ":2: a line of ", kMaxJsonlLineBytes + 12,
                         " bytes; at most ", kMaxJsonlLineBytes, " allowed"));
  fs::remove(path);

  path = WriteFile("huge.jsonl", "{\"text\": \"x\"}\n");
  fs::resize_file(path, static_cast<uintmax_t>(kMaxJsonlFileBytes) + 1);
  records = ReadJsonl(path, "validation", Task::kCausalLm);
  EXPECT_EQ(std::string(records.status().message()),
            absl::StrCat("validation: ", path, ": ", kMaxJsonlFileBytes + 1, " bytes; at most ",
                         kMaxJsonlFileBytes, " allowed"));
  fs::remove(path);
}

TEST(ReadJsonlTest, ConversationsAreCheckedLineByLine) {
  const std::string ok =
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, "
      "{\"role\": \"assistant\", \"content\": \"a\"}]}\n";
  std::string path = WriteFile("chat.jsonl", ok + "\n" + ok);
  auto records = ReadJsonl(path, "train", Task::kCausalLm);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[1].line, 3);
  EXPECT_EQ((*records)[1].conversation,
            R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]})");

  path = WriteFile("chat_bad.jsonl", ok + "{\"messages\": [{\"role\": \"user\", \"content\": [1]}, "
                                          "{\"role\": \"assistant\", \"content\": \"a\"}]}\n");
  EXPECT_EQ(ReadJsonl(path, "validation", Task::kCausalLm).status(),
            absl::InvalidArgumentError("validation: " + path +
                                       ":2: messages[0].content: must be a string (got array)"));
  path = WriteFile("chat_cls.jsonl", ok);
  EXPECT_EQ(
      ReadJsonl(path, "train", Task::kSequenceClassification).status(),
      absl::InvalidArgumentError("train: " + path + ":1: 'messages' records are for causal-lm"));
}

TEST(LabelMapTest, StringsSortedIntegersAsGiven) {
  std::vector<Record> records(3);
  records[0].label_is_string = records[1].label_is_string = records[2].label_is_string = true;
  records[0].label_string = "pos";
  records[1].label_string = "neg";
  records[2].label_string = "pos";
  auto map = BuildLabelMap(records, "train");
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->names, (std::vector<std::string>{"neg", "pos"}));
  EXPECT_EQ(map->num_labels, 2);

  std::vector<Record> ints(2);
  ints[0].label_number = 0;
  ints[1].label_number = 4;
  map = BuildLabelMap(ints, "train");
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->num_labels, 5);

  ints[1].label_number = 1.5;
  EXPECT_EQ(BuildLabelMap(ints, "train").status().code(), absl::StatusCode::kInvalidArgument);
  ints[1].label_is_string = true;
  EXPECT_EQ(BuildLabelMap(ints, "train").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EpochBatchesTest, DeterministicCompleteAndBucketed) {
  std::vector<Example> examples(103);
  for (size_t i = 0; i < examples.size(); ++i) examples[i].ids.assign(1 + (i * 7) % 40, 1);
  auto a = EpochBatches(examples, 8, 42, 0);
  auto b = EpochBatches(examples, 8, 42, 0);
  auto c = EpochBatches(examples, 8, 42, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_EQ(a.size(), 13u);
  std::set<int64_t> seen;
  for (const auto& batch : a) seen.insert(batch.begin(), batch.end());
  EXPECT_EQ(seen.size(), examples.size());
  // Bucketing: within a batch, lengths differ by much less than across the data set.
  int64_t widest = 0;
  for (const auto& batch : a) {
    size_t lo = 1000, hi = 0;
    for (int64_t i : batch) {
      lo = std::min(lo, examples[i].ids.size());
      hi = std::max(hi, examples[i].ids.size());
    }
    widest = std::max<int64_t>(widest, static_cast<int64_t>(hi - lo));
  }
  EXPECT_LT(widest, 10);
}

}  // namespace
}  // namespace attune::engine
