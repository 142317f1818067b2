// Integration tests of the API's input checks: the real attuned on a free port, driven by the
// real attune CLI. Every bad submit must fail with INVALID_ARGUMENT (CLI exit 2) and the exact
// message (the field and what is allowed), and the server must keep serving afterwards: after
// each bad request a good job is accepted.
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/attuned_process.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

class ApiValidationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    root_ = dir_->path() + "/root";
    example_ = root_ + "/example";
    fs::create_directories(example_);
    ASSERT_TRUE(MakeExample(example_));
    // The data roots as the server reports them in messages (resolved).
    resolved_root_ = fs::canonical(root_).string();
    server_ = new AttunedProcess(dir_->path() + "/data", {"--data-roots", root_});
    resolved_data_ = fs::weakly_canonical(dir_->path() + "/data").string();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }

  // `attune submit` with the example job plus `extra` flags (later flags win).
  CliResult Submit(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {
        "submit", "--model",       example_ + "/model", "--train", example_ + "/train.jsonl",
        "--task", "classification"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(server_->address(), args, /*timeout_s=*/30);
  }

  // The submit fails with exit 2 and exactly "INVALID_ARGUMENT: `message`"; then the server
  // still accepts a good job.
  void ExpectInvalid(const std::vector<std::string>& extra, const std::string& message) {
    CliResult r = Submit(extra);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.err, "attune: INVALID_ARGUMENT: " + message + "\n");
    EXPECT_EQ(r.out, "");
    ExpectStillServes();
  }

  // A good one-step job is accepted: exit 0 and its id on stdout, and the server knows it.
  void ExpectStillServes() {
    CliResult r = Submit({"--max-steps", "1", "--name", "still-serves"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(std::regex_match(r.out, std::regex("j-[0-9a-f]+\n"))) << r.out;
    if (r.exit_code != 0 || r.out.empty()) return;
    CliResult get = RunCli(server_->address(), {"get", r.out.substr(0, r.out.size() - 1)}, 30);
    EXPECT_EQ(get.exit_code, 0) << get.err;
  }

  std::string Outside(const std::string& field, const std::string& path) const {
    return field + ": " + path + " is outside the data roots (" + resolved_data_ + ", " +
           resolved_root_ + ")";
  }

  static TempDir* dir_;
  static std::string root_;
  static std::string example_;
  static std::string resolved_root_;
  static std::string resolved_data_;  // the data dir, always the first root
  static AttunedProcess* server_;
};

TempDir* ApiValidationTest::dir_ = nullptr;
std::string ApiValidationTest::root_;
std::string ApiValidationTest::example_;
std::string ApiValidationTest::resolved_root_;
std::string ApiValidationTest::resolved_data_;
AttunedProcess* ApiValidationTest::server_ = nullptr;

TEST_F(ApiValidationTest, HealthCheckAnswersServing) {
  ASSERT_FALSE(server_->address().empty());
  CliResult r = RunCli(server_->address(), {"health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  client::AttuneClient client(server_->address());
  auto named = client.CheckHealth("attune.v1.Attune");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(*named, "SERVING");
}

TEST_F(ApiValidationTest, UnknownTarget) {
  ExpectInvalid({"--targets", "q,x"},
                "targets: unknown projection 'x'; expected any of q,k,v,o,gate,up,down");
}

TEST_F(ApiValidationTest, DuplicateTarget) {
  ExpectInvalid({"--targets", "q,v,q"}, "targets: projection 'q' given twice");
}

TEST_F(ApiValidationTest, LearningRateZero) {
  ExpectInvalid({"--lr", "0"}, "learning_rate: 0 must be in (0, 10]");
}

TEST_F(ApiValidationTest, LearningRateNegative) {
  ExpectInvalid({"--lr", "-0.001"}, "learning_rate: -0.001 must be in (0, 10]");
}

TEST_F(ApiValidationTest, LearningRateAboveTen) {
  ExpectInvalid({"--lr", "11"}, "learning_rate: 11 must be in (0, 10]");
}

TEST_F(ApiValidationTest, RatioZero) {
  ExpectInvalid({"--lr-ratio", "v=0"},
                "lr_ratios: ratio for 'v' is 0; expected a number in (0, 1000]");
}

TEST_F(ApiValidationTest, RatioForProjectionNotTrained) {
  ExpectInvalid({"--lr-ratio", "k=2"}, "lr_ratios: projection 'k' is not among the targets (q,v)");
}

TEST_F(ApiValidationTest, LoraPlusRatioNegative) {
  ExpectInvalid({"--loraplus-ratio", "-1"}, "loraplus_ratio: -1 must be in (0, 1000]");
}

TEST_F(ApiValidationTest, RankZero) {
  ExpectInvalid({"--rank", "0"}, "lora.rank: 0 is out of range; expected 1..4096");
}

TEST_F(ApiValidationTest, DropoutOne) {
  ExpectInvalid({"--dropout", "1"}, "lora.dropout: 1 must be in [0, 1)");
}

TEST_F(ApiValidationTest, EpochsZero) {
  ExpectInvalid({"--epochs", "0"}, "epochs: 0 must be >= 1");
}

TEST_F(ApiValidationTest, BatchSizeZero) {
  ExpectInvalid({"--batch-size", "0"}, "batch_size: 0 must be in 1..65536");
}

TEST_F(ApiValidationTest, MaxSeqLenTooShort) {
  ExpectInvalid({"--max-seq-len", "4"}, "max_seq_len: 4 must be in 8..1048576");
}

TEST_F(ApiValidationTest, RequestIdTooLong) {
  ExpectInvalid({"--request-id", std::string(129, 'r')},
                "request_id: 129 characters; at most 128 allowed");
}

// More GPUs or data-parallel ranks than the server has are refused at CreateJob, with the field
// and what the server has (this one has no GPU and one CPU slot).
TEST_F(ApiValidationTest, MoreGpusOrRanksThanTheServerHas) {
  CliResult r = Submit({"--gpus", "2"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(
      r.err.rfind("attune: INVALID_ARGUMENT: gpus: 2 requested but this server has 0 GPU(s)", 0),
      0u)
      << r.err;
  EXPECT_EQ(r.out, "");
  r = Submit({"--ranks", "2"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(
      r.err.rfind("attune: INVALID_ARGUMENT: ranks: 2 needs 2 CPU slots but this server has 1", 0),
      0u)
      << r.err;
  ExpectStillServes();
}

TEST_F(ApiValidationTest, SystemFileOutsideDataRoots) {
  ExpectInvalid({"--train", "/etc/passwd"}, Outside("train", "/etc/passwd"));
}

TEST_F(ApiValidationTest, DotDotOutsideDataRoots) {
  // The CLI sends the path lexically normalised; the server refuses it before looking for it.
  const std::string sent =
      fs::path(root_ + "/../root/../../etc/hostname").lexically_normal().string();
  ExpectInvalid({"--train", root_ + "/../root/../../etc/hostname"}, Outside("train", sent));
}

TEST_F(ApiValidationTest, SymlinkOutsideDataRoots) {
  fs::create_directories(dir_->path() + "/elsewhere");
  std::ofstream(dir_->path() + "/elsewhere/v.jsonl") << "{}\n";
  fs::create_symlink(dir_->path() + "/elsewhere/v.jsonl", root_ + "/sneaky.jsonl");
  ExpectInvalid({"--validation", root_ + "/sneaky.jsonl"},
                Outside("validation", root_ + "/sneaky.jsonl"));
}

TEST_F(ApiValidationTest, ModelDirectoryOutsideDataRoots) {
  ExpectInvalid({"--model", "/usr"}, Outside("model", "/usr"));
}

TEST_F(ApiValidationTest, MissingTrainFile) {
  ExpectInvalid({"--train", root_ + "/missing.jsonl"},
                "train: " + root_ + "/missing.jsonl does not exist");
}

TEST_F(ApiValidationTest, MissingModelDirectory) {
  ExpectInvalid({"--model", root_ + "/no-model"}, "model: " + root_ + "/no-model does not exist");
}

TEST_F(ApiValidationTest, ModelIsAFile) {
  ExpectInvalid({"--model", example_ + "/train.jsonl"},
                "model: " + example_ + "/train.jsonl is not a directory");
}

TEST_F(ApiValidationTest, MissingModel) {
  CliResult r = RunCli(server_->address(), {"submit", "--train", example_ + "/train.jsonl",
                                            "--task", "classification"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "attune: INVALID_ARGUMENT: model: required; the path of a Hugging Face model "
            "directory\n");
  ExpectStillServes();
}

TEST_F(ApiValidationTest, MissingTask) {
  CliResult r = RunCli(server_->address(), {"submit", "--model", example_ + "/model", "--train",
                                            example_ + "/train.jsonl"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "attune: INVALID_ARGUMENT: task: required; expected one of classification, "
            "regression, causal-lm\n");
  ExpectStillServes();
}

TEST_F(ApiValidationTest, MissingTrain) {
  CliResult r = RunCli(server_->address(),
                       {"submit", "--model", example_ + "/model", "--task", "classification"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "attune: INVALID_ARGUMENT: train: required; the path of a JSONL file\n");
  ExpectStillServes();
}

TEST_F(ApiValidationTest, UnknownJobIsNotFound) {
  const std::string want = "attune: NOT_FOUND: job 'j-doesnotexist' not found\n";
  CliResult get = RunCli(server_->address(), {"get", "j-doesnotexist"}, 30);
  EXPECT_EQ(get.exit_code, 3) << get.err;
  EXPECT_EQ(get.err, want);
  CliResult cancel = RunCli(server_->address(), {"cancel", "j-doesnotexist"}, 30);
  EXPECT_EQ(cancel.exit_code, 3);
  EXPECT_EQ(cancel.err, want);
  CliResult watch = RunCli(server_->address(), {"watch", "j-doesnotexist"}, 30);
  EXPECT_EQ(watch.exit_code, 3);
  EXPECT_EQ(watch.err, want);
  CliResult download =
      RunCli(server_->address(), {"download", "j-doesnotexist", "-o", dir_->path() + "/dl"}, 30);
  EXPECT_EQ(download.exit_code, 3);
  EXPECT_EQ(download.err, want);
  ExpectStillServes();
}

TEST_F(ApiValidationTest, UnknownCommandIsUsageError) {
  CliResult r = RunCli(server_->address(), {"frobnicate"}, 30);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "A subcommand is required\nRun with --help for more information.\n");
}

TEST_F(ApiValidationTest, UnknownTaskNameIsRefusedByTheCli) {
  CliResult r = RunCli(server_->address(), {"submit", "--task", "translation"}, 30);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "attune: INVALID_ARGUMENT: task: unknown task 'translation'; expected one of "
            "classification, regression, causal-lm\n");
}

TEST_F(ApiValidationTest, UnknownStateFilterIsRefusedByTheCli) {
  CliResult r = RunCli(server_->address(), {"list", "--state", "DONE"}, 30);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "attune: INVALID_ARGUMENT: --state: unknown state 'DONE'; expected one of QUEUED, "
            "RUNNING, SUCCEEDED, FAILED, CANCELLED, PAUSED\n");
}

TEST_F(ApiValidationTest, UnreachableServerExitsFour) {
  CliResult r = RunCli("127.0.0.1:1", {"list"}, 60);
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_EQ(r.err.rfind("attune: UNAVAILABLE: ", 0), 0u) << r.err;
}

// Bad requests in a row leave the server whole: a good job afterwards runs to SUCCEEDED.
TEST_F(ApiValidationTest, GoodJobSucceedsAfterBadRequests) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Submit({"--rank", "0"}).exit_code, 2);
  CliResult r = Submit({"--max-steps", "2", "--name", "after-bad-requests"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(r.out.empty());
  const std::string id = r.out.substr(0, r.out.size() - 1);
  CliResult watch = RunCli(server_->address(), {"watch", id}, /*timeout_s=*/90);
  EXPECT_EQ(watch.exit_code, 0) << watch.out << watch.err;
  EXPECT_NE(watch.out.find("state SUCCEEDED"), std::string::npos) << watch.out;
}

// Needs the real engine: the example model with a malformed training file.
TEST_F(ApiValidationTest, MalformedJsonlNamesFileAndLine) {
  // Inside the root, so that only the file content is wrong.
  const std::string bad = example_ + "/bad.jsonl";
  std::ofstream(bad) << "{\"text\": \"fine\", \"label\": \"pos\"}\n{\"text\": oops\n";
  // The engine reads the file the server resolved.
  ExpectInvalid({"--train", bad}, "train: " + fs::canonical(bad).string() + ":2: not valid JSON");
}

// A Llama-family model with a chat template: the parity fixture plus a word-level tokenizer.
std::string MakeChatModel(const std::string& dir) {
  const std::string model = dir + "/chat-model";
  fs::create_directories(model);
  fs::copy(std::string(ATTUNE_SOURCE_DIR) + "/tests/fixtures/parity/llama_causal", model,
           fs::copy_options::recursive);
  nlohmann::json vocab = {{"<pad>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int id = 3; id < 128; ++id) vocab["w" + std::to_string(id)] = id;
  std::ofstream(model + "/tokenizer.json")
      << nlohmann::json{{"version", "1.0"},
                        {"added_tokens", nlohmann::json::array()},
                        {"pre_tokenizer", {{"type", "WhitespaceSplit"}}},
                        {"model",
                         {{"type", "WordLevel"}, {"vocab", vocab}, {"unk_token", "<pad>"}}}}
             .dump();
  std::ofstream(model + "/tokenizer_config.json") << nlohmann::json{
      {"bos_token", "<s>"},
      {"eos_token", "</s>"},
      {"chat_template",
       "{{ bos_token }}{% for m in messages %}{{ m.content + ' ' + eos_token }}"
       "{% endfor %}"}}.dump();
  return model;
}

// A chat file with a bad record is refused at CreateJob naming the file, the line and the field,
// and the server goes on serving.
TEST_F(ApiValidationTest, BadChatRecordNamesFileLineAndField) {
  const std::string model = MakeChatModel(example_);
  const std::string chat = example_ + "/chat.jsonl";
  std::ofstream(chat)
      << R"({"messages": [{"role": "user", "content": "w5 w6"}, {"role": "assistant", "content": "w7"}]})"
      << "\n"
      << R"({"messages": [{"role": "user", "content": "w5"}, {"role": "bot", "content": "w7"}]})"
      << "\n";
  CliResult r = RunCli(server_->address(),
                       {"submit", "--model", model, "--train", chat, "--task", "causal-lm"}, 30);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "attune: INVALID_ARGUMENT: train: " + fs::canonical(chat).string() +
                       ":2: messages[1].role: unknown role 'bot'; expected system, user, assistant "
                       "or tool\n");
  ExpectStillServes();
}

}  // namespace
}  // namespace attune::testing
