// Data-parallel training end to end on the CPU (server/engine/data_parallel.h): attuned with
// two CPU slots runs a job of `ranks: 2` as two attune-workers joined by Gloo, and it trains what
// one worker with twice the batch trains: the same loss at every step (1e-6 relative) and the
// same adapter (1e-6), packed and unpacked; killing one rank's worker mid-job kills the other,
// and the retried attempt resumes both ranks from rank 0's checkpoint to that same adapter.
#include <signal.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

// The F32 tensors of a safetensors file, by name (a reader of our own: the format is an 8-byte
// little-endian header length, a JSON header, then the data; this test checks the engine's
// writer, so it does not use the engine's reader).
std::map<std::string, std::vector<float>> ReadF32Tensors(const std::string& path) {
  const std::string bytes = ReadFile(path);
  std::map<std::string, std::vector<float>> tensors;
  if (bytes.size() < 8) return tensors;
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_size));
  const size_t data = 8 + header_size;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__" || entry["dtype"] != "F32") continue;
    const size_t begin = entry["data_offsets"][0], end = entry["data_offsets"][1];
    std::vector<float> values((end - begin) / sizeof(float));
    std::memcpy(values.data(), bytes.data() + data + begin, end - begin);
    tensors[name] = std::move(values);
  }
  return tensors;
}

class DataParallelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    example_ = dir_.path() + "/example";
    fs::create_directories(example_);
    ASSERT_TRUE(MakeExample(example_));
    TurnOffModelDropout(example_ + "/model");  // and the job has no LoRA dropout
    server_ = std::make_unique<AttunedProcess>(
        dir_.path() + "/data",
        std::vector<std::string>{"--data-roots", example_, "--slots-per-device", "2",
                                 "--retry-backoff", "0"});
    client_ = std::make_unique<client::AttuneClient>(server_->address());
  }

  // The example job without LoRA dropout, `batch` examples per rank.
  std::string Submit(int ranks, int batch, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"submit",
                                     "--model",
                                     example_ + "/model",
                                     "--train",
                                     example_ + "/train.jsonl",
                                     "--task",
                                     "classification",
                                     "--targets",
                                     "q,v",
                                     "--lr-ratio",
                                     "v=4",
                                     "--lr",
                                     "3e-4",
                                     "--dropout",
                                     "0",
                                     "--max-seq-len",
                                     "64",
                                     "--seed",
                                     "5",
                                     "--ranks",
                                     std::to_string(ranks),
                                     "--batch-size",
                                     std::to_string(batch)};
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = RunCli(server_->address(), args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }

  v1::Job Finish(const std::string& id) {
    v1::Job job = WaitForJob(*client_, id, IsTerminal, 200);
    EXPECT_EQ(job.state(), v1::SUCCEEDED) << job.error();
    return job;
  }

  // Each step's loss (the last report of a step wins: a retried attempt repeats steps).
  std::map<int64_t, double> Losses(const std::string& id) {
    std::map<int64_t, double> losses;
    EXPECT_TRUE(WatchJobFor(server_->address(), id, 0, 60, [&](const v1::JobEvent& e) {
                  if (e.has_step()) losses[e.step().step()] = e.step().train_loss();
                  return true;
                }).ok());
    return losses;
  }

  std::map<std::string, std::vector<float>> Adapter(const std::string& id) {
    const std::string dir = dir_.path() + "/adapter-" + std::to_string(++downloads_);
    CliResult r = RunCli(server_->address(), {"download", id, "-o", dir});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ReadF32Tensors(dir + "/adapter_model.safetensors");
  }

  // Two ranks of `batch` against one of 2 x `batch`: every step's loss within 1e-6 relative,
  // and every adapter tensor within 1e-6 of its largest value.
  void ExpectSameTraining(const std::string& two_ranks, const std::string& one_rank) {
    const std::map<int64_t, double> a = Losses(two_ranks), b = Losses(one_rank);
    ASSERT_EQ(a.size(), b.size());
    ASSERT_FALSE(a.empty());
    for (const auto& [step, loss] : b) {
      ASSERT_TRUE(a.count(step)) << step;
      EXPECT_NEAR(a.at(step), loss, 1e-6 * std::abs(loss)) << "step " << step;
    }
    const auto x = Adapter(two_ranks), y = Adapter(one_rank);
    ASSERT_EQ(x.size(), y.size());
    ASSERT_FALSE(y.empty());
    for (const auto& [name, values] : y) {
      ASSERT_TRUE(x.count(name)) << name;
      ASSERT_EQ(x.at(name).size(), values.size()) << name;
      double scale = 0, worst = 0;
      for (size_t i = 0; i < values.size(); ++i) {
        scale = std::max(scale, std::abs(double{values[i]}));
        worst = std::max(worst, std::abs(double{x.at(name)[i]} - values[i]));
      }
      EXPECT_LE(worst, 1e-6) << name << ": largest value " << scale;
    }
  }

  TempDir dir_;
  int downloads_ = 0;
  std::string example_;
  std::unique_ptr<AttunedProcess> server_;
  std::unique_ptr<client::AttuneClient> client_;
};

TEST_F(DataParallelTest, TwoPackedRanksTrainWhatOneRankOfTwiceTheBatchTrains) {
  const std::string two = Submit(2, 8, {"--max-steps", "12"});
  Finish(two);
  EXPECT_EQ(client_->GetJob(two).value().spec().ranks(), 2);
  const std::string one = Submit(1, 16, {"--max-steps", "12"});
  Finish(one);
  ExpectSameTraining(two, one);
  // The second rank ran in a worker of its own, and its log says which rank it was.
  const std::string rank1_log = ReadFile(dir_.path() + "/data/jobs/" + two + "/worker-rank1.log");
  EXPECT_NE(rank1_log.find("rank 1 of 2"), std::string::npos) << rank1_log;
}

// Unpacked. One rank's worker is killed mid-job: the other is killed with it, the attempt is
// retried, both ranks resume from rank 0's checkpoint, and the job ends with the very adapter an
// uninterrupted two-rank run writes, which trains what one rank of twice the batch trains.
TEST_F(DataParallelTest, KillingOneRankRetriesBothFromTheCheckpointToTheSameAdapter) {
  const std::vector<std::string> job = {"--packing",          "off", "--max-steps", "24",
                                        "--checkpoint-every", "8"};
  const std::string straight = Submit(2, 7, job);
  Finish(straight);
  const std::string one = Submit(1, 14, job);
  Finish(one);
  ExpectSameTraining(straight, one);

  const std::string killed = Submit(2, 7, job);
  const int64_t at_kill =
      WaitForJob(
          *client_, killed, [](const v1::Job& j) { return j.current_step() >= 10; }, 200)
          .current_step();
  const std::vector<pid_t> workers = WorkersOf(server_->pid());
  ASSERT_EQ(workers.size(), 2u) << "a job of two ranks runs two attune-workers";
  ASSERT_EQ(kill(workers.back(), SIGKILL), 0);
  Finish(killed);
  ASSERT_LT(at_kill, 24) << "the job ended before one of its workers could be killed";
  std::vector<std::string> messages;
  ASSERT_TRUE(WatchJobFor(server_->address(), killed, 0, 60, [&](const v1::JobEvent& e) {
                if (e.has_state_change()) messages.push_back(e.state_change().message());
                return true;
              }).ok());
  bool resumed = false;
  for (const std::string& m : messages) {
    resumed = resumed || m.find("resumed from the checkpoint at step ") != std::string::npos;
  }
  EXPECT_TRUE(resumed) << "the retried attempt did not resume from a checkpoint";
  EXPECT_TRUE(Adapter(killed) == Adapter(straight))
      << "the retried two-rank job's adapter differs from the uninterrupted run's";
  EXPECT_EQ(Losses(killed), Losses(straight));
}

// attuned --one-rank-collectives: a job of one rank forms its one-member process group (the
// path a 1-rank NCCL job takes on CUDA) and trains exactly what it trains without one.
TEST_F(DataParallelTest, OneRankWithItsProcessGroupTrainsWhatOneRankWithoutOneTrains) {
  const std::vector<std::string> job = {"--max-steps", "6"};
  const std::string plain = Submit(1, 8, job);
  Finish(plain);
  const std::map<int64_t, double> plain_losses = Losses(plain);
  const auto plain_adapter = Adapter(plain);
  server_ = std::make_unique<AttunedProcess>(
      dir_.path() + "/grouped",
      std::vector<std::string>{"--data-roots", example_, "--one-rank-collectives"});
  client_ = std::make_unique<client::AttuneClient>(server_->address());
  const std::string grouped = Submit(1, 8, job);
  Finish(grouped);
  const std::string log = ReadFile(dir_.path() + "/grouped/jobs/" + grouped + "/worker.log");
  EXPECT_NE(log.find("rank 0 of 1 (rendezvous 127.0.0.1:"), std::string::npos) << log;
  EXPECT_EQ(Losses(grouped), plain_losses);
  EXPECT_TRUE(Adapter(grouped) == plain_adapter);
}

}  // namespace
}  // namespace attune::testing
