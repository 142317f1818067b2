// Data-root confinement through the real attuned on loopback: every file a job reads is opened
// inside the data roots at the time it is opened, so neither a symbolic link inside a model
// directory nor a file swapped for a link after CreateJob leads outside them, and the answer
// never quotes the outside file. Without --data-roots the roots are the data dir alone.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

// The first 8 bytes of /etc/passwd, read as a safetensors header length, were quoted back.
constexpr char kSecret[] = "root:x:0:0:root:/root:/bin/bash\n";

class DataRootsConfinementTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string base = fs::canonical(dir_->path()).string();
    root_ = base + "/root";
    outside_ = base + "/outside";
    data_ = base + "/data";
    fs::create_directories(root_ + "/example");
    fs::create_directories(outside_ + "/example");
    ASSERT_TRUE(MakeExample(root_ + "/example"));
    ASSERT_TRUE(MakeExample(outside_ + "/example"));
    std::ofstream(outside_ + "/secret") << kSecret;
    server_ = new AttunedProcess(data_, {"--data-roots", root_, "--slots-per-device", "1"});
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }

  // `attune submit` of a classification job on `model` and `train`, plus `extra`.
  static CliResult Submit(const AttunedProcess& server, const std::string& model,
                          const std::string& train, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"submit", "--model", model,           "--train",
                                     train,    "--task",  "classification"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(server.address(), args, /*timeout_s=*/30);
  }

  // What the server answers for `path` outside its roots (the data dir, then --data-roots).
  static std::string Outside(const std::string& field, const std::string& path) {
    return field + ": " + path + " is outside the data roots (" + data_ + ", " + root_ + ")";
  }

  static void ExpectNothingOfTheSecret(const std::string& text) {
    EXPECT_EQ(text.find("root:x"), std::string::npos) << text;
    EXPECT_EQ(text.find("3475222254926655346"), std::string::npos) << text;
  }

  static TempDir* dir_;
  static std::string root_;
  static std::string outside_;
  static std::string data_;
  static AttunedProcess* server_;
};

TempDir* DataRootsConfinementTest::dir_ = nullptr;
std::string DataRootsConfinementTest::root_;
std::string DataRootsConfinementTest::outside_;
std::string DataRootsConfinementTest::data_;
AttunedProcess* DataRootsConfinementTest::server_ = nullptr;

// A model directory inside the roots whose model.safetensors is a link to a file outside them.
TEST_F(DataRootsConfinementTest, WeightsLinkedOutsideAreRefusedWithoutQuotingThem) {
  const std::string model = root_ + "/linked-weights";
  fs::create_directories(model);
  for (const char* name : {"config.json", "tokenizer.json"}) {
    fs::copy_file(root_ + "/example/model/" + name, model + "/" + name);
  }
  fs::create_symlink(outside_ + "/secret", model + "/model.safetensors");
  CliResult r = Submit(*server_, model, root_ + "/example/train.jsonl", {});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err,
            "attune: INVALID_ARGUMENT: " + Outside("model", model + "/model.safetensors") + "\n");
  ExpectNothingOfTheSecret(r.err);
  ExpectNothingOfTheSecret(server_->Log());
}

// A model directory of links to a model outside the roots: refused, not trained.
TEST_F(DataRootsConfinementTest, ModelDirectoryOfLinksToAnOutsideModelIsRefused) {
  const std::string model = root_ + "/mirror";
  fs::create_directories(model);
  for (const auto& entry : fs::directory_iterator(outside_ + "/example/model")) {
    fs::create_symlink(entry.path(), model + "/" + entry.path().filename().string());
  }
  CliResult r = Submit(*server_, model, root_ + "/example/train.jsonl", {"--max-steps", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "attune: INVALID_ARGUMENT: " + Outside("model", model + "/config.json") + "\n");
  EXPECT_EQ(r.out, "");
}

// A training file replaced by a link to an outside file after CreateJob (while its job waits
// behind another): the job FAILS naming the file when it runs, and trains on nothing outside.
TEST_F(DataRootsConfinementTest, TrainingFileSwappedForALinkAfterCreateFailsTheJob) {
  const std::string train = root_ + "/swapped.jsonl";
  fs::copy_file(root_ + "/example/train.jsonl", train);
  const std::string model = root_ + "/example/model";
  CliResult blocker = Submit(*server_, model, root_ + "/example/train.jsonl",
                             {"--max-steps", "1000000", "--name", "blocker"});
  ASSERT_EQ(blocker.exit_code, 0) << blocker.err;
  const std::string blocker_id = blocker.out.substr(0, blocker.out.find('\n'));
  client::AttuneClient client(server_->address());
  WaitForJob(
      client, blocker_id, [](const v1::Job& j) { return j.state() == v1::RUNNING; }, 60);
  CliResult queued = Submit(*server_, model, train, {"--max-steps", "2", "--name", "swapped"});
  ASSERT_EQ(queued.exit_code, 0) << queued.err;
  const std::string id = queued.out.substr(0, queued.out.find('\n'));
  auto before = client.GetJob(id);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(before->state(), v1::QUEUED);

  // The outside file is a good training file: the job would succeed if it were followed.
  fs::remove(train);
  fs::create_symlink(outside_ + "/example/train.jsonl", train);
  ASSERT_TRUE(client.CancelJob(blocker_id).ok());
  v1::Job job = WaitForJob(client, id, IsTerminal, 60);
  EXPECT_EQ(job.state(), v1::FAILED) << job.error();
  EXPECT_EQ(job.error(), Outside("train", train));
  EXPECT_EQ(job.current_step(), 0);
}

// Without --data-roots the roots are the data dir alone: the directory attuned was started in is
// not one of them.
TEST(DefaultDataRootsTest, CurrentDirectoryIsNotADataRoot) {
  TempDir dir;
  const std::string base = fs::canonical(dir.path()).string();
  fs::create_directories(base + "/cwd/example");
  ASSERT_TRUE(MakeExample(base + "/cwd/example"));
  const fs::path before = fs::current_path();
  fs::current_path(base + "/cwd");  // the child starts here
  AttunedProcess server(base + "/data", {});
  fs::current_path(before);
  ASSERT_FALSE(server.address().empty());
  const std::string model = base + "/cwd/example/model";
  CliResult r = RunCli(server.address(),
                       {"submit", "--model", model, "--train", base + "/cwd/example/train.jsonl",
                        "--task", "classification"},
                       30);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "attune: INVALID_ARGUMENT: model: " + model + " is outside the data roots (" +
                       base + "/data)\n");
}

}  // namespace
}  // namespace attune::testing
