// Integration tests of the API's input checks: the real attuned on a free port, driven by the
// real attune CLI. Every bad submit must fail with INVALID_ARGUMENT (CLI exit 2) and a message
// naming the field, and the server must keep serving afterwards.
#include <filesystem>
#include <fstream>
#include <memory>

#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "tests/attuned_process.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

class ApiValidationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    root_ = dir_->path() + "/root";
    fs::create_directories(root_ + "/model");
    std::ofstream(root_ + "/model/config.json") << "{}";
    std::ofstream(root_ + "/train.jsonl") << "{\"text\": \"good\", \"label\": 1}\n";
    server_ = new AttunedProcess(dir_->path() + "/data", {"--data-roots", root_});
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }

  // `attune submit` with a valid base plus `extra` flags (later flags win).
  CliResult Submit(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"submit", "--model", root_ + "/model", "--train",
                                     root_ + "/train.jsonl", "--task", "classification"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(server_->address(), args);
  }

  void ExpectInvalid(const std::vector<std::string>& extra, const std::string& message_start) {
    CliResult r = Submit(extra);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("INVALID_ARGUMENT: " + message_start), std::string::npos)
        << "stderr: " << r.err;
    EXPECT_EQ(r.out, "");
  }

  static TempDir* dir_;
  static std::string root_;
  static AttunedProcess* server_;
};

TempDir* ApiValidationTest::dir_ = nullptr;
std::string ApiValidationTest::root_;
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
  ExpectInvalid({"--targets", "q,x"}, "targets: unknown projection 'x'; expected any of");
}

TEST_F(ApiValidationTest, LearningRateNotPositive) {
  ExpectInvalid({"--lr", "0"}, "learning_rate: 0 must be in (0, 10]");
  ExpectInvalid({"--lr", "-0.001"}, "learning_rate:");
}

TEST_F(ApiValidationTest, RatioNotPositive) {
  ExpectInvalid({"--lr-ratio", "v=0"}, "lr_ratios: ratio for 'v' is 0");
  ExpectInvalid({"--loraplus-ratio", "-1"}, "loraplus_ratio:");
}

TEST_F(ApiValidationTest, RankZero) { ExpectInvalid({"--rank", "0"}, "lora.rank: 0 is out of range"); }

TEST_F(ApiValidationTest, PathOutsideDataRoots) {
  ExpectInvalid({"--train", "/etc/passwd"}, "train: /etc/passwd is outside the data roots (");
  ExpectInvalid({"--train", root_ + "/../root/../../etc/hostname"}, "train: ");
  fs::create_directories(dir_->path() + "/elsewhere");
  std::ofstream(dir_->path() + "/elsewhere/v.jsonl") << "{}\n";
  fs::create_symlink(dir_->path() + "/elsewhere/v.jsonl", root_ + "/sneaky.jsonl");
  ExpectInvalid({"--validation", root_ + "/sneaky.jsonl"}, "validation: ");
  ExpectInvalid({"--model", "/usr"}, "model: /usr is outside the data roots");
}

TEST_F(ApiValidationTest, MissingFile) {
  ExpectInvalid({"--train", root_ + "/missing.jsonl"}, "train: " + root_ + "/missing.jsonl does not exist");
  ExpectInvalid({"--model", root_ + "/no-model"}, "model: ");
}

TEST_F(ApiValidationTest, MissingRequiredFields) {
  CliResult r = RunCli(server_->address(), {"submit", "--train", root_ + "/train.jsonl",
                                            "--task", "classification"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("INVALID_ARGUMENT: model: required"), std::string::npos) << r.err;
}

TEST_F(ApiValidationTest, UnknownJobIsNotFound) {
  CliResult get = RunCli(server_->address(), {"get", "j-doesnotexist"});
  EXPECT_EQ(get.exit_code, 3) << get.err;
  EXPECT_NE(get.err.find("NOT_FOUND"), std::string::npos) << get.err;
  EXPECT_EQ(RunCli(server_->address(), {"cancel", "j-doesnotexist"}).exit_code, 3);
  EXPECT_EQ(RunCli(server_->address(), {"watch", "j-doesnotexist"}).exit_code, 3);
  EXPECT_EQ(RunCli(server_->address(), {"download", "j-doesnotexist", "-o",
                                        dir_->path() + "/dl"}).exit_code, 3);
}

TEST_F(ApiValidationTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunCli(server_->address(), {"frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunCli(server_->address(), {"submit", "--task", "translation"}).exit_code, 2);
  EXPECT_EQ(RunCli(server_->address(), {"list", "--state", "DONE"}).exit_code, 2);
}

TEST_F(ApiValidationTest, UnreachableServerExitsFour) {
  CliResult r = RunCli("127.0.0.1:1", {"list"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
}

TEST_F(ApiValidationTest, ServerKeepsServingAfterBadRequests) {
  for (int i = 0; i < 3; ++i) Submit({"--rank", "0"});
  CliResult list = RunCli(server_->address(), {"list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(RunCli(server_->address(), {"health"}).exit_code, 0);
}

// Needs the real engine: the example model with a malformed training file.
TEST_F(ApiValidationTest, MalformedJsonlNamesFileAndLine) {
  // The example goes inside the root so that only the file content is wrong.
  const std::string dir = root_ + "/example";
  fs::create_directories(dir);
  ASSERT_TRUE(MakeExample(dir));
  std::ofstream(dir + "/bad.jsonl") << "{\"text\": \"fine\", \"label\": \"pos\"}\n{\"text\": oops\n";
  CliResult r = RunCli(server_->address(),
                       {"submit", "--model", dir + "/model", "--train", dir + "/bad.jsonl",
                        "--task", "classification"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("INVALID_ARGUMENT: train: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bad.jsonl:2"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace attune::testing
