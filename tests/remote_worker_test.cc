// A worker on another machine (attuned --worker-listen, attune-worker --join-token-file), tested
// on one machine with two network namespaces as two hosts: this test's own, where attuned and
// rank 0 run on 10.231.N.1, and a new one joined to it by a veth pair, where the remote worker
// runs on 10.231.N.2. A 2-rank Gloo job across the two trains exactly what the same job trains
// with both ranks beside attuned. Skipped, saying why, where network namespaces cannot be made.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

constexpr char kIp[] = "/usr/sbin/ip";

// `ip ARGS...`; false with its output in *error when it fails.
bool Ip(const std::vector<std::string>& args, std::string* error) {
  std::vector<std::string> argv = {kIp};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string output;
  if (RunProgram(argv, "", &output, 10) == 0) return true;
  *error = absl::StrCat("ip ", absl::StrJoin(args, " "), ": ", output);
  return false;
}

// The HOST:PORT attuned prints for --worker-listen (5 s at most); "" when it does not.
std::string RemoteWorkersAddress(const AttunedProcess& server) {
  constexpr char kLine[] = "attuned: remote workers on ";
  for (int i = 0; i < 100; ++i) {
    const std::string log = server.Log();
    const size_t at = log.find(kLine);
    if (at != std::string::npos) {
      const size_t begin = at + sizeof(kLine) - 1;
      return log.substr(begin, log.find('\n', begin) - begin);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return "";
}

class RemoteWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const int n = 10 + getpid() % 200;
    netns_ = absl::StrCat("attune-rw-", getpid());
    here_ = absl::StrCat("atA", getpid());
    there_ = absl::StrCat("atB", getpid());
    host_a_ = absl::StrCat("10.231.", n, ".1");
    host_b_ = absl::StrCat("10.231.", n, ".2");
    std::string error;
    if (!Ip({"netns", "add", netns_}, &error)) {
      GTEST_SKIP() << "network namespaces cannot be created here: " << error;
    }
    made_netns_ = true;
    ASSERT_TRUE(
        Ip({"link", "add", here_, "type", "veth", "peer", "name", there_}, &error) &&
        Ip({"link", "set", there_, "netns", netns_}, &error) &&
        Ip({"addr", "add", host_a_ + "/24", "dev", here_}, &error) &&
        Ip({"link", "set", here_, "up"}, &error) &&
        Ip({"netns", "exec", netns_, kIp, "addr", "add", host_b_ + "/24", "dev", there_}, &error) &&
        Ip({"netns", "exec", netns_, kIp, "link", "set", there_, "up"}, &error) &&
        Ip({"netns", "exec", netns_, kIp, "link", "set", "lo", "up"}, &error))
        << error;
    example_ = dir_.path() + "/example";
    ASSERT_TRUE(MakeExample(example_));
    TurnOffModelDropout(example_ + "/model");
  }

  void TearDown() override {
    remote_worker_.reset();
    std::string ignored;
    if (made_netns_) {
      Ip({"link", "del", here_}, &ignored);
      Ip({"netns", "del", netns_}, &ignored);
    }
  }

  // The remote worker, in the other namespace, joining `listen` with the token in `token_file`;
  // returns its log's path.
  std::string StartRemoteWorker(const std::string& listen, const std::string& token_file) {
    const std::string log = dir_.path() + "/remote-worker.log";
    remote_worker_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{kIp, "netns", "exec", netns_, ATTUNE_WORKER_PATH, "--supervisor",
                                 listen, "--join-token-file", token_file, "--local-address",
                                 host_b_},
        log);
    return log;
  }

  // attuned with a CPU slot here and a remote-cpu slot, remote workers joining on host A.
  std::unique_ptr<AttunedProcess> StartWithRemoteSlot(const std::string& name,
                                                      const std::string& token_file) {
    return AttunedProcess::StartExact(
        {ATTUNED_PATH, "--listen", "127.0.0.1:0", "--data-dir", dir_.path() + "/" + name,
         "--data-roots", example_, "--devices", "cpu,remote-cpu", "--worker-listen", host_a_ + ":0",
         "--worker-token-file", token_file},
        dir_.path() + "/attuned-" + name + ".log");
  }

  // Trains the 2-rank job on `server` for `steps`; returns each step's loss, and the adapter's
  // bytes in *adapter. `during`, when given, runs once the job is submitted (it may kill one of
  // its workers).
  std::map<int64_t, double> Train(const AttunedProcess& server, const std::string& name,
                                  std::string* adapter, int steps = 10,
                                  const std::function<void(const std::string&)>& during = {}) {
    const std::vector<std::string> args = {"submit",
                                           "--model",
                                           example_ + "/model",
                                           "--train",
                                           example_ + "/train.jsonl",
                                           "--task",
                                           "classification",
                                           "--dropout",
                                           "0",
                                           "--max-seq-len",
                                           "64",
                                           "--seed",
                                           "3",
                                           "--ranks",
                                           "2",
                                           "--batch-size",
                                           "8",
                                           "--max-steps",
                                           std::to_string(steps),
                                           "--checkpoint-every",
                                           "8",
                                           "--lr",
                                           "3e-4"};
    CliResult r = RunCli(server.address(), args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string id = r.out.substr(0, r.out.find('\n'));
    client::AttuneClient client(server.address());
    if (during) during(id);
    v1::Job job = WaitForJob(client, id, IsTerminal, 90);
    EXPECT_EQ(job.state(), v1::SUCCEEDED) << job.error();
    std::map<int64_t, double> losses;
    EXPECT_TRUE(WatchJobFor(server.address(), id, 0, 30, [&](const v1::JobEvent& e) {
                  if (e.has_step()) losses[e.step().step()] = e.step().train_loss();
                  return true;
                }).ok());
    const std::string dir = dir_.path() + "/adapter-" + name;
    r = RunCli(server.address(), {"download", id, "-o", dir});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    *adapter = ReadFile(dir + "/adapter_model.safetensors");
    return losses;
  }

  TempDir dir_;
  std::string netns_, here_, there_, host_a_, host_b_, example_;
  bool made_netns_ = false;
  std::unique_ptr<ChildProcess> remote_worker_;
};

TEST_F(RemoteWorkerTest, TwoRanksOnTwoHostsTrainWhatTwoRanksOnOneHostTrain) {
  std::string one_host_adapter;
  std::map<int64_t, double> one_host;
  {
    AttunedProcess server(dir_.path() + "/one-host",
                          {"--data-roots", example_, "--slots-per-device", "2"});
    one_host = Train(server, "one-host", &one_host_adapter);
  }
  const std::string token_file = dir_.path() + "/worker-token";
  std::ofstream(token_file) << "a-token-for-remote-workers\n";
  std::unique_ptr<AttunedProcess> started = StartWithRemoteSlot("two-hosts", token_file);
  AttunedProcess& server = *started;
  const std::string listen = RemoteWorkersAddress(server);
  ASSERT_FALSE(listen.empty()) << server.Log();
  const std::string remote_log = StartRemoteWorker(listen, token_file);
  std::string two_hosts_adapter;
  const std::map<int64_t, double> two_hosts = Train(server, "two-hosts", &two_hosts_adapter);
  EXPECT_NE(ReadFile(remote_log).find("rank 1 of 2 (rendezvous " + host_a_ + ":"),
            std::string::npos)
      << ReadFile(remote_log);
  ASSERT_EQ(two_hosts.size(), 10u);
  EXPECT_EQ(two_hosts, one_host);
  EXPECT_FALSE(one_host_adapter.empty());
  EXPECT_TRUE(two_hosts_adapter == one_host_adapter)
      << "the two-host job's adapter differs from the one-host job's";
}

// Rank 0's worker killed mid-job: the remote rank ends at once (Gloo sees its peer go, or
// attuned sends it Abort: it would wait in its collectives), the retry takes the remote worker
// again, and both ranks resume from the checkpoint to the adapter of an uninterrupted run.
TEST_F(RemoteWorkerTest, KillingRankZeroAbortsTheRemoteRankAndBothResume) {
  const std::string token_file = dir_.path() + "/worker-token";
  std::ofstream(token_file) << "a-token-for-remote-workers\n";
  std::unique_ptr<AttunedProcess> started = StartWithRemoteSlot("data", token_file);
  AttunedProcess& server = *started;
  const std::string listen = RemoteWorkersAddress(server);
  ASSERT_FALSE(listen.empty()) << server.Log();
  const std::string remote_log = StartRemoteWorker(listen, token_file);
  std::string straight_adapter, killed_adapter;
  const std::map<int64_t, double> straight = Train(server, "straight", &straight_adapter, 40);
  int64_t at_kill = -1;
  std::string killed_id;
  const std::map<int64_t, double> killed =
      Train(server, "killed", &killed_adapter, 40, [&](const std::string& id) {
        killed_id = id;
        client::AttuneClient client(server.address());
        at_kill = WaitForJob(
                      client, id, [](const v1::Job& j) { return j.current_step() >= 12; }, 60)
                      .current_step();
        const std::vector<pid_t> workers = WorkersOf(server.pid());
        ASSERT_EQ(workers.size(), 1u) << "rank 0 runs beside attuned, rank 1 elsewhere";
        ASSERT_EQ(kill(workers[0], SIGKILL), 0);
      });
  EXPECT_LT(at_kill, 40) << "the job ended before its rank 0 could be killed";
  // The remote rank ended at once (its Gloo saw rank 0 go, or attuned aborted it): the retry
  // took the remote worker again, well before the collectives' 120 s timeout.
  const std::string log = ReadFile(remote_log);
  int rank1_starts = 0;
  for (size_t at = log.find("job " + killed_id + " on cpu, rank 1 of 2"); at != std::string::npos;
       at = log.find("job " + killed_id + " on cpu, rank 1 of 2", at + 1)) {
    ++rank1_starts;
  }
  EXPECT_GE(rank1_starts, 2) << log;
  EXPECT_EQ(killed, straight);
  EXPECT_FALSE(straight_adapter.empty());
  EXPECT_TRUE(killed_adapter == straight_adapter)
      << "the retried job's adapter differs from the uninterrupted run's";
}

// A worker with the wrong token gets no job: the rank waits for a rightful one.
TEST_F(RemoteWorkerTest, AWorkerWithAWrongTokenIsRefused) {
  const std::string token_file = dir_.path() + "/worker-token";
  std::ofstream(token_file) << "the-right-token\n";
  const std::string wrong_file = dir_.path() + "/wrong-token";
  std::ofstream(wrong_file) << "the-wrong-token\n";
  std::unique_ptr<AttunedProcess> started = StartWithRemoteSlot("data", token_file);
  AttunedProcess& server = *started;
  const std::string listen = RemoteWorkersAddress(server);
  ASSERT_FALSE(listen.empty()) << server.Log();
  const std::string remote_log = StartRemoteWorker(listen, wrong_file);
  std::string log;
  for (int i = 0; i < 100 && log.find("UNAUTHENTICATED") == std::string::npos &&
                  log.find("not a valid worker token") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log = ReadFile(remote_log);
  }
  EXPECT_NE(log.find("not a valid worker token"), std::string::npos) << log;
}

}  // namespace
}  // namespace attune::testing
