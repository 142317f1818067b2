// Integration tests of the checks that keep hostile requests from breaking the service (issue
// 11, items 6, 7 and 9): sizes of strings, maps and ids; ListJobs pages that stay under gRPC's
// 4 MB; memory admission; a tokenizer beyond the model's vocabulary; the label message with
// string labels; a request_id reused with another spec. The real attuned on a free port, driven
// through the client library (so that requests the CLI would never build can be sent), with
// the exact status codes asserted.
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/engine/file_limits.h"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

class RequestLimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    example_ = dir_->path() + "/root/example";
    fs::create_directories(example_);
    ASSERT_TRUE(MakeExample(example_));
    // A small training file, so that each CreateJob's file check is quick.
    std::ifstream in(example_ + "/train.jsonl");
    std::ofstream out(example_ + "/small.jsonl");
    std::string line;
    for (int i = 0; i < 16 && std::getline(in, line); ++i) out << line << "\n";
    server_ = new AttunedProcess(dir_->path() + "/data", {"--data-roots", dir_->path() + "/root"});
    client_ = new client::AttuneClient(server_->address());
    client_->set_timeout(std::chrono::seconds(30));
  }
  static void TearDownTestSuite() {
    delete client_;
    delete server_;
    delete dir_;
  }

  // The example job: classification on small.jsonl, one step.
  static v1::CreateJobRequest Request() {
    v1::CreateJobRequest request;
    v1::JobSpec* spec = request.mutable_spec();
    spec->set_model(example_ + "/model");
    spec->set_train(example_ + "/small.jsonl");
    spec->set_task(v1::TASK_SEQUENCE_CLASSIFICATION);
    spec->set_max_steps(1);
    return request;
  }

  static TempDir* dir_;
  static std::string example_;
  static AttunedProcess* server_;
  static client::AttuneClient* client_;
};

TempDir* RequestLimitsTest::dir_ = nullptr;
std::string RequestLimitsTest::example_;
AttunedProcess* RequestLimitsTest::server_ = nullptr;
client::AttuneClient* RequestLimitsTest::client_ = nullptr;

TEST_F(RequestLimitsTest, HugeNameIsRefused) {
  v1::CreateJobRequest request = Request();
  request.mutable_spec()->set_name(std::string(3 << 20, 'n'));
  absl::StatusOr<v1::Job> job = client_->CreateJob(request);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(), "name: 3145728 characters; at most 1024 allowed");
}

// Over gRPC's 4 MiB (api::kMaxRequestBytes), the message is refused before it is parsed, and
// the server serves on.
TEST_F(RequestLimitsTest, MessageOverFourMebibytesIsResourceExhausted) {
  v1::CreateJobRequest request = Request();
  request.mutable_spec()->set_name(std::string(5 << 20, 'n'));
  absl::StatusOr<v1::Job> job = client_->CreateJob(request);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(job.status().message().find("4194304"), std::string::npos) << job.status();
  CliResult list = RunCli(server_->address(), {"list"}, 30);
  EXPECT_EQ(list.exit_code, 0) << list.err;
}

TEST_F(RequestLimitsTest, TenThousandLabelsAreRefusedAndListStillWorks) {
  v1::CreateJobRequest request = Request();
  for (int i = 0; i < 10000; ++i) {
    (*request.mutable_spec()->mutable_labels())[absl::StrCat("k", i)] = std::string(300, 'v');
  }
  absl::StatusOr<v1::Job> job = client_->CreateJob(request);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(), "labels: 10000 entries; at most 64 allowed");
  CliResult list = RunCli(server_->address(), {"list"}, 30);
  EXPECT_EQ(list.exit_code, 0) << list.err;
}

TEST_F(RequestLimitsTest, LongLabelValueIsRefused) {
  v1::CreateJobRequest request = Request();
  (*request.mutable_spec()->mutable_labels())["team"] = std::string(2000, 'v');
  absl::StatusOr<v1::Job> job = client_->CreateJob(request);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(),
            "labels: the value of 'team' has 2000 characters; at most 1024 allowed");
}

TEST_F(RequestLimitsTest, HugeJobIdGetsAShortAnswer) {
  absl::StatusOr<v1::Job> job = client_->GetJob(std::string(1 << 20, 'j'));
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(), "job_id: 1048576 characters; at most 64 allowed");
}

// Jobs of the largest size allowed (64 labels of 1024 characters, about 70 KB each): 60 of them
// are more than gRPC's 4 MB, so one page of up to 1000 jobs must stop early and say where to go
// on; following the tokens gives every job once.
TEST_F(RequestLimitsTest, ListJobsPagesByBytes) {
  std::set<std::string> created;
  for (int i = 0; i < 60; ++i) {
    v1::CreateJobRequest request = Request();
    request.mutable_spec()->set_name(std::string(1024, 'a' + i % 26));
    for (int k = 0; k < 64; ++k) {
      (*request.mutable_spec()->mutable_labels())[absl::StrCat("key", k)] =
          std::string(1024, 'a' + k % 26);
    }
    absl::StatusOr<v1::Job> job = client_->CreateJob(request);
    ASSERT_TRUE(job.ok()) << job.status();
    created.insert(job->id());
    client_->CancelJob(job->id()).status().IgnoreError();  // keeps the CPU slot free
  }
  v1::ListJobsRequest request;
  request.set_page_size(1000);
  absl::StatusOr<v1::ListJobsResponse> first = client_->ListJobs(request);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_LT(first->jobs_size(), 60);
  EXPECT_GT(first->jobs_size(), 0);
  EXPECT_NE(first->next_page_token(), "");
  EXPECT_LE(first->ByteSizeLong(), size_t{2} << 20);
  std::set<std::string> listed;
  v1::ListJobsResponse page = *first;
  for (int pages = 1; pages <= 10; ++pages) {
    for (const v1::Job& job : page.jobs()) EXPECT_TRUE(listed.insert(job.id()).second) << job.id();
    if (page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
    absl::StatusOr<v1::ListJobsResponse> next = client_->ListJobs(request);
    ASSERT_TRUE(next.ok()) << next.status();
    page = *next;
  }
  for (const std::string& id : created) EXPECT_EQ(listed.count(id), 1u) << id;
  CliResult list = RunCli(server_->address(), {"list"}, 30);
  EXPECT_EQ(list.exit_code, 0) << list.err;
}

TEST_F(RequestLimitsTest, JobThatCannotFitInMemoryIsRefused) {
  v1::CreateJobRequest request = Request();
  request.mutable_spec()->set_batch_size(65536);
  request.mutable_spec()->set_max_seq_len(1048576);
  absl::StatusOr<v1::Job> job = client_->CreateJob(request);
  if (job.ok()) client_->CancelJob(job->id()).status().IgnoreError();
  EXPECT_EQ(job.status().code(), absl::StatusCode::kResourceExhausted);
  const std::string message(job.status().message());
  EXPECT_TRUE(std::regex_match(
      message, std::regex("batch_size 65536 x max_seq_len 1048576: training needs an estimated "
                          "[0-9.e+]+ bytes \\(an upper bound\\) but the CPU has [0-9.e+]+ bytes "
                          "available; lower batch_size or max_seq_len")))
      << message;
}

TEST_F(RequestLimitsTest, TokenizerBeyondTheVocabularyIsRefused) {
  const std::string model = example_ + "/big-tokenizer";
  fs::copy(example_ + "/model", model);
  nlohmann::json tokenizer = nlohmann::json::parse(ReadFile(model + "/tokenizer.json"));
  tokenizer["added_tokens"].push_back({{"id", 600},
                                       {"content", "<extra>"},
                                       {"single_word", false},
                                       {"lstrip", false},
                                       {"rstrip", false},
                                       {"normalized", false},
                                       {"special", true}});
  std::ofstream(model + "/tokenizer.json") << tokenizer.dump();
  v1::CreateJobRequest request = Request();
  request.mutable_spec()->set_model(model);
  absl::StatusOr<v1::Job> job = client_->CreateJob(request);
  if (job.ok()) client_->CancelJob(job->id()).status().IgnoreError();
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(),
            "model: tokenizer.json has ids up to 600 (added tokens included) but config.json's "
            "vocab_size is 512; every token id must be below vocab_size (" +
                fs::canonical(model).string() + ")");
}

// Files over their limits (server/engine/file_limits.h) are refused at CreateJob from their
// size: sparse files, so nothing is written to disk, and the server never reads them.
TEST_F(RequestLimitsTest, FilesOverTheirLimitsAreRefusedBeforeTheyAreRead) {
  const std::string model = example_ + "/huge-tokenizer";
  fs::copy(example_ + "/model", model);
  fs::resize_file(model + "/tokenizer.json", engine::kMaxTokenizerJsonBytes + 1);
  v1::CreateJobRequest request = Request();
  request.mutable_spec()->set_model(model);
  absl::StatusOr<v1::Job> job = client_->CreateJob(request);
  if (job.ok()) client_->CancelJob(job->id()).status().IgnoreError();
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(),
            absl::StrCat("model: ", fs::canonical(model).string(),
                         "/tokenizer.json: ", engine::kMaxTokenizerJsonBytes + 1,
                         " bytes; at most ", engine::kMaxTokenizerJsonBytes, " allowed"));

  const std::string train = example_ + "/huge.jsonl";
  fs::copy(example_ + "/small.jsonl", train);
  fs::resize_file(train, engine::kMaxJsonlFileBytes + 1);
  request = Request();
  request.mutable_spec()->set_train(train);
  job = client_->CreateJob(request);
  if (job.ok()) client_->CancelJob(job->id()).status().IgnoreError();
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(), absl::StrCat("train: ", fs::canonical(train).string(), ": ",
                                                 engine::kMaxJsonlFileBytes + 1, " bytes; at most ",
                                                 engine::kMaxJsonlFileBytes, " allowed"));
  fs::remove(train);
}

TEST_F(RequestLimitsTest, NumericValidationLabelNamesTheStringLabels) {
  const std::string validation = example_ + "/numeric-validation.jsonl";
  std::ofstream(validation) << "{\"text\": \"fine\", \"label\": 1}\n";
  v1::CreateJobRequest request = Request();
  request.mutable_spec()->set_validation(validation);
  absl::StatusOr<v1::Job> job = client_->CreateJob(request);
  if (job.ok()) client_->CancelJob(job->id()).status().IgnoreError();
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(),
            "validation: " + fs::canonical(validation).string() +
                ":1: label 1 is not one of the training labels (the strings 'negative', "
                "'positive')");
}

TEST_F(RequestLimitsTest, RequestIdReusedWithAnotherSpecIsAlreadyExists) {
  v1::CreateJobRequest request = Request();
  request.set_request_id("reused-key");
  absl::StatusOr<v1::Job> first = client_->CreateJob(request);
  ASSERT_TRUE(first.ok()) << first.status();
  client_->CancelJob(first->id()).status().IgnoreError();
  absl::StatusOr<v1::Job> retry = client_->CreateJob(request);  // the same spec: the same job
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->id(), first->id());
  request.mutable_spec()->set_max_steps(2);
  absl::StatusOr<v1::Job> other = client_->CreateJob(request);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(other.status().message(),
            "request_id: 'reused-key' was already used for job " + first->id() +
                " with a different spec; use a new request_id for a new job");
}

}  // namespace
}  // namespace attune::testing
