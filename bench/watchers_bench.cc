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
#include <thread>
#include <vector>

#include "client/attune_client.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

int main(int argc, char** argv) {
  std::string server, job;
  int watchers = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--server") server = argv[i + 1];
    else if (flag == "--job") job = argv[i + 1];
    else if (flag == "--watchers") watchers = std::stoi(argv[i + 1]);
  }
  if (server.empty() || job.empty() || watchers < 0) {
    std::cerr << "usage: attune-watchers-bench --server HOST:PORT --job ID --watchers N\n";
    return 2;
  }
  attune::client::AttuneClient client(server);
  std::vector<int64_t> received(std::max(watchers, 1), 0);
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  // With no watchers, one stream still waits for the end (it is the measurement's clock).
  const int streams = std::max(watchers, 1);
  for (int w = 0; w < streams; ++w) {
    threads.emplace_back([&, w] {
      attune::client::AttuneClient own(server);
      absl::Status s = own.WatchJob(job, 0, [&](const attune::v1::JobEvent&) {
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
  auto got = client.GetJob(job);
  if (!got.ok()) {
    std::cerr << got.status() << "\n";
    return 1;
  }
  using google::protobuf::util::TimeUtil;
  const double seconds =
      TimeUtil::DurationToMicroseconds(got->finish_time() - got->start_time()) / 1e6;
  auto [lo, hi] = std::minmax_element(received.begin(), received.end());
  std::cout << nlohmann::json{{"watchers", watchers},
                              {"state", attune::v1::JobState_Name(got->state())},
                              {"steps", got->current_step()},
                              {"seconds", seconds},
                              {"steps_per_second", got->current_step() / seconds},
                              {"events_min", *lo},
                              {"events_max", *hi},
                              {"failed_streams", failed.load()}}
                   .dump()
            << std::endl;
  return failed == 0 ? 0 : 1;
}
