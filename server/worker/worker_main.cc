// attune-worker: trains one attempt of one job for the attuned that started it, over the worker
// protocol (proto/attune/worker/v1/worker.proto): connects to --supervisor, says which
// --attempt it is, receives the job, runs engine::RunTraining, reports progress and the end,
// and exits 0 once it has reported the end (whatever the job's outcome), 2 when it cannot get
// a job, 3 when the connection to attuned fails before the end is reported. A Stop from
// attuned, or the connection's loss, ends training after the current step with a checkpoint.
// With --share-base it trains a shared-base group instead (group_worker.h).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "attune/worker/v1/worker.grpc.pb.h"
#include "common/job_spec.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/trainer.h"
#include "server/worker/group_worker.h"
#include "server/worker/worker_protocol.h"
#include "server/worker/worker_session.h"

namespace attune::worker {
namespace {

// How long a remote worker waits before asking again when attuned had no rank for it.
constexpr std::chrono::seconds kRejoin(1);

// One attempt: the one named `hello` (by id, or for a remote worker by the worker token).
int RunWorker(const std::string& address, const v1::Hello& first,
              const std::string& local_address) {
  auto stub =
      v1::Supervisor::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  AttemptStream attempt;
  if (!OpenAttempt(*stub, first, &attempt)) return 2;
  std::atomic<bool> stop{false};
  std::thread reader([&] {  // Stop commands; the stream's end (attuned gone) stops too
    v1::SupervisorCommand next;
    while (attempt.stream->Read(&next)) {
      if (next.has_stop()) stop = true;
      if (next.has_abort()) {
        std::cerr << "attune-worker: aborted by attuned: another rank of this attempt died"
                  << std::endl;
        _exit(4);
      }
    }
    stop = true;
  });
  WorkerObserver observer(attempt.stream.get(), &stop, /*quiet=*/attempt.assignment.rank() > 0);
  absl::StatusOr<AssignedJob> job = JobOf(attempt.assignment, local_address);
  absl::StatusOr<engine::TrainResult> result =
      job.ok() ? engine::RunTraining(job->spec, job->options, &observer)
               : absl::StatusOr<engine::TrainResult>(job.status());
  return ReportEnd(attempt, observer, result, reader);
}

// A worker on another machine: asks attuned for a rank to train, again and again, until killed.
// Each attempt runs in a child process of its own (forked before this process has touched gRPC
// or LibTorch), so an aborted or crashed attempt does not end the loop.
int JoinLoop(const std::string& address, const std::string& token_file,
             const std::string& local_address) {
  absl::StatusOr<std::string> token = ReadWorkerToken("--join-token-file", token_file);
  if (!token.ok()) {
    std::cerr << "attune-worker: " << token.status().message() << std::endl;
    return 2;
  }
  v1::Hello hello;
  hello.set_join_token(*token);
  for (;;) {
    const pid_t child = fork();
    if (child < 0) {
      std::cerr << "attune-worker: fork failed" << std::endl;
      return 2;
    }
    if (child == 0) _exit(RunWorker(address, hello, local_address));
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::this_thread::sleep_for(kRejoin);
  }
}

}  // namespace
}  // namespace attune::worker

int main(int argc, char** argv) {
  CLI::App app{
      "attune-worker: trains job attempts for attuned: one, when attuned starts it (--attempt); "
      "or, on another machine, rank after rank of the jobs that wait for a remote worker "
      "(--join-token-file; attuned --worker-listen and a remote-cpu device)"};
  std::string supervisor;
  std::string attempt;
  std::string token_file;
  std::string local_address;
  app.add_option("--supervisor", supervisor,
                 "attuned's worker address: unix:/data/run/w.sock, or HOST:PORT of --worker-listen")
      ->required();
  auto* by_id = app.add_option("--attempt", attempt, "the attempt id attuned gave this worker");
  auto* by_token = app.add_option("--join-token-file", token_file,
                                  "a file holding attuned's worker token: join as a remote worker");
  by_id->excludes(by_token);
  bool share_base = false;
  app.add_flag("--share-base", share_base,
               "train the attempt in a shared-base group, with every attempt attuned adds to it "
               "(attuned --share-base)")
      ->needs(by_id);
  app.add_option("--local-address", local_address,
                 "this machine's address the other ranks reach it at (Gloo; default: the "
                 "rendezvous host)");
  CLI11_PARSE(app, argc, argv);
  if (!token_file.empty()) {
    return attune::worker::JoinLoop(supervisor, token_file, local_address);
  }
  if (attempt.empty()) {
    std::cerr << "attune-worker: give --attempt or --join-token-file" << std::endl;
    return 2;
  }
  if (share_base) return attune::worker::RunGroupWorker(supervisor, attempt);
  attune::worker::v1::Hello hello;
  hello.set_attempt(attempt);
  return attune::worker::RunWorker(supervisor, hello, local_address);
}
