// One attuned per data directory and per port, serving exactly the ports it prints: a second
// server on the same data dir exits naming the first one's pid and leaves its running job alone
// (and kill -9 frees the data dir for a restart); a second server on a taken gRPC or HTTP port
// fails to start; the listening TCP sockets of the process are the printed ports and no other.
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

// The port of "HOST:PORT".
int PortOf(const std::string& address) {
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) << address;
  return port;
}

// The socket inodes among the open files of process `pid` (/proc/PID/fd/N -> "socket:[INODE]").
std::set<std::string> SocketInodes(pid_t pid) {
  std::set<std::string> inodes;
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::error_code ec;
    const std::string target = fs::read_symlink(entry.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0) {
      inodes.insert(target.substr(8, target.size() - 9));
    }
  }
  return inodes;
}

// The TCP ports process `pid` listens on: the LISTEN rows (state 0A) of /proc/PID/net/tcp and
// tcp6 whose socket inode is one of the process's open files.
std::set<int> ListeningPorts(pid_t pid) {
  const std::set<std::string> inodes = SocketInodes(pid);
  std::set<int> ports;
  for (const char* table : {"tcp", "tcp6"}) {
    std::ifstream in(absl::StrCat("/proc/", pid, "/net/", table));
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipWhitespace());
      if (fields.size() < 10 || fields[3] != "0A" || inodes.count(fields[9]) == 0) continue;
      int port = 0;
      EXPECT_TRUE(absl::SimpleHexAtoi(fields[1].substr(fields[1].rfind(':') + 1), &port)) << line;
      ports.insert(port);
    }
  }
  return ports;
}

class SingleServerTest : public ::testing::Test {
 protected:
  // Runs attuned with `args` (after the binary) and waits up to 20 s for it to exit (it exits
  // at once when it cannot start); returns its exit code (-1 when it kept running: then it is
  // stopped), and its output in *output.
  int RunAttuned(const std::vector<std::string>& args, std::string* output) {
    const std::string log = absl::StrCat(dir_.path(), "/second-", runs_++, ".log");
    std::vector<std::string> argv = {ATTUNED_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    int code = -1;
    {
      ChildProcess child(argv, log);
      code = child.Wait(20);
    }
    *output = ReadFile(log);
    return code;
  }

  std::string Submit(const AttunedProcess& server, const std::string& max_steps) {
    CliResult r = RunCli(server.address(),
                         {"submit", "--packing", "off", "--model", example_ + "/model", "--train",
                          example_ + "/train.jsonl", "--validation", example_ + "/validation.jsonl",
                          "--task", "classification", "--max-steps", max_steps, "--seed", "7"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }

  TempDir dir_;
  std::string example_;  // the example model and data, where a test makes them
  int runs_ = 0;
};

// Every event of job `id` on `address`, up to and including its terminal one.
std::vector<v1::JobEvent> AllEvents(const std::string& address, const std::string& id,
                                    int64_t from_sequence) {
  std::vector<v1::JobEvent> events;
  EXPECT_TRUE(WatchJobFor(address, id, from_sequence, 120, [&](const v1::JobEvent& e) {
                events.push_back(e);
                return true;
              }).ok());
  return events;
}

TEST_F(SingleServerTest, SecondServerOnTheSameDataDirExitsNamingTheFirstOnesPid) {
  example_ = dir_.path() + "/example";
  fs::create_directories(example_);
  ASSERT_TRUE(MakeExample(example_));
  const std::string data = dir_.path() + "/data";
  auto first =
      std::make_unique<AttunedProcess>(data, std::vector<std::string>{"--data-roots", example_});
  ASSERT_FALSE(first->address().empty());
  const std::string id = Submit(*first, "200");
  client::AttuneClient client(first->address());
  v1::Job running = WaitForJob(
      client, id, [](const v1::Job& j) { return j.state() == v1::RUNNING; }, 60);
  ASSERT_EQ(running.state(), v1::RUNNING);

  std::string output;
  EXPECT_EQ(RunAttuned({"--listen", "127.0.0.1:0", "--data-dir", data, "--devices", "cpu",
                        "--data-roots", example_},
                       &output),
            1);
  const std::string canonical = fs::canonical(data).string();
  EXPECT_EQ(output,
            absl::StrCat("attuned: --data-dir: ", canonical, " is in use by another attuned (pid ",
                         first->pid(), ", lock file ", canonical,
                         "/attune.lock); stop it first or choose another --data-dir\n"));

  // The first server's job was left alone: it runs to its end once, with one terminal event,
  // never requeued, and nothing after it.
  std::vector<v1::JobEvent> events = AllEvents(first->address(), id, 0);
  ASSERT_FALSE(events.empty());
  int terminal = 0, queued_after_running = 0;
  bool ran = false;
  for (const v1::JobEvent& e : events) {
    if (!e.has_state_change()) continue;
    const v1::JobState state = e.state_change().state();
    terminal += state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
    queued_after_running += ran && state == v1::QUEUED;
    ran |= state == v1::RUNNING;
  }
  EXPECT_EQ(terminal, 1);
  EXPECT_EQ(queued_after_running, 0);
  ASSERT_TRUE(events.back().has_state_change());
  EXPECT_EQ(events.back().state_change().state(), v1::SUCCEEDED);
  const int64_t last = events.back().sequence();
  EXPECT_EQ(last, static_cast<int64_t>(events.size()));
  EXPECT_TRUE(AllEvents(first->address(), id, last).empty());

  // kill -9 drops the lock with the process: a restart on the data dir starts and sees the same
  // history, still ending at the one terminal event.
  EXPECT_EQ(first->StopWith(SIGKILL, 10), 128 + SIGKILL);
  first.reset();
  AttunedProcess restarted(data, {"--data-roots", example_});
  ASSERT_FALSE(restarted.address().empty()) << restarted.Log();
  EXPECT_EQ(AllEvents(restarted.address(), id, 0).size(), events.size());
  EXPECT_TRUE(AllEvents(restarted.address(), id, last).empty());
}

TEST_F(SingleServerTest, SecondServerOnATakenPortFailsToStart) {
  AttunedProcess first(dir_.path() + "/data", {"--http", "127.0.0.1:0"});
  ASSERT_FALSE(first.address().empty());
  ASSERT_FALSE(first.http_address().empty());

  std::string output;
  EXPECT_EQ(RunAttuned({"--listen", first.address(), "--data-dir", dir_.path() + "/other",
                        "--devices", "cpu"},
                       &output),
            1);
  const std::string line = absl::StrCat("attuned: --listen: cannot listen on ", first.address(),
                                        " (in use, or not a local address)\n");
  EXPECT_NE(output.find(line), std::string::npos) << output;

  EXPECT_EQ(RunAttuned({"--listen", "127.0.0.1:0", "--http", first.http_address(), "--data-dir",
                        dir_.path() + "/third", "--devices", "cpu"},
                       &output),
            1);
  EXPECT_NE(output.find(absl::StrCat("attuned: --http: cannot bind ", first.http_address(), "\n")),
            std::string::npos)
      << output;
  // The first server still answers.
  client::AttuneClient client(first.address());
  EXPECT_TRUE(client.ListJobs(v1::ListJobsRequest()).ok());
}

TEST_F(SingleServerTest, ListensOnExactlyThePrintedPorts) {
  AttunedProcess server(dir_.path() + "/data", {"--http", "127.0.0.1:0"});
  ASSERT_FALSE(server.address().empty());
  ASSERT_FALSE(server.http_address().empty());
  const std::set<int> printed = {PortOf(server.address()), PortOf(server.http_address())};
  EXPECT_EQ(ListeningPorts(server.pid()), printed);
}

}  // namespace
}  // namespace attune::testing
