// attune-watchers-bench: N concurrent WatchJob streams on one job, from one process, to measure
// what watchers cost training (the target: 200 watchers slow a job's steps/s by under 5%).
//
//   attune-watchers-bench --server HOST:PORT --job ID --watchers N
//
// Opens N streams from sequence 0 at once, follows each to the job's end, then prints one JSON
// object: watchers, the job's steps, its start-to-finish seconds as the server recorded them,
// steps per second, and the fewest and most events a watcher received (each must see them all).
// bench/watchers.sh alternates runs with 0 and N watchers on the same server.
#include <algorithm>
#include <atomic>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/attune_client.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace {

// Command-line options, read in main().
struct Options {
  std::string server;  // HOST:PORT of attuned
  std::string job;     // the job to watch
  int watchers = 0;    // concurrent WatchJob streams (0: one stream, only as the clock)
};

// Reads --server, --job and --watchers; nullopt when one is missing or --watchers is negative.
std::optional<Options> ParseFlags(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--server") {
      options.server = argv[i + 1];
    } else if (flag == "--job") {
      options.job = argv[i + 1];
    } else if (flag == "--watchers") {
      options.watchers = std::stoi(argv[i + 1]);
    }
  }
  if (options.server.empty() || options.job.empty() || options.watchers < 0) return std::nullopt;
  return options;
}

// What the streams saw: the events each received and how many ended in an error.
struct StreamCounts {
  std::vector<int64_t> received;
  int failed = 0;
};

// Follows the job from sequence 0 to its end on max(watchers, 1) concurrent streams, each with
// its own client, and returns once every stream has ended.
StreamCounts WatchToTheEnd(const Options& options) {
  // With no watchers, one stream still waits for the end (it is the measurement's clock).
  const int streams = std::max(options.watchers, 1);
  std::vector<int64_t> received(streams, 0);
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < streams; ++w) {
    threads.emplace_back([&, w] {
      attune::client::AttuneClient own(options.server);
      absl::Status s = own.WatchJob(options.job, 0, [&](const attune::v1::JobEvent&) {
        ++received[w];
        return true;
      });
      if (!s.ok()) {
        std::cerr << "watcher " << w << ": " << s << "\n";
        ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  return {std::move(received), failed.load()};
}

// Prints the one JSON object (see the file comment) for the finished `job`.
void PrintResult(const Options& options, const attune::v1::Job& job, const StreamCounts& counts) {
  using google::protobuf::util::TimeUtil;
  const double seconds =
      TimeUtil::DurationToMicroseconds(job.finish_time() - job.start_time()) / 1e6;
  auto [lo, hi] = std::minmax_element(counts.received.begin(), counts.received.end());
  std::cout << nlohmann::json{{"watchers", options.watchers},
                              {"state", attune::v1::JobState_Name(job.state())},
                              {"steps", job.current_step()},
                              {"seconds", seconds},
                              {"steps_per_second", job.current_step() / seconds},
                              {"events_min", *lo},
                              {"events_max", *hi},
                              {"failed_streams", counts.failed}}
                   .dump()
            << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Options> options = ParseFlags(argc, argv);
  if (!options) {
    std::cerr << "usage: attune-watchers-bench --server HOST:PORT --job ID --watchers N\n";
    return 2;
  }
  attune::client::AttuneClient client(options->server);
  const StreamCounts counts = WatchToTheEnd(*options);
  auto got = client.GetJob(options->job);
  if (!got.ok()) {
    std::cerr << got.status() << "\n";
    return 1;
  }
  PrintResult(*options, *got, counts);
  return counts.failed == 0 ? 0 : 1;
}
