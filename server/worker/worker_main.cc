// attune-worker: trains one attempt of one job for the attuned that started it, over the worker
// protocol (proto/attune/worker/v1/worker.proto): connects to --supervisor, says which
// --attempt it is, receives the job, runs engine::RunTraining, reports progress and the end,
// and exits 0 once it has reported the end (whatever the job's outcome), 2 when it cannot get
// a job, 3 when the connection to attuned fails before the end is reported. A Stop from
// attuned, or the connection's loss, ends training after the current step with a checkpoint.
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
#include "server/worker/worker_protocol.h"

namespace attune::worker {
namespace {

using Stream = grpc::ClientReaderWriter<v1::WorkerReport, v1::SupervisorCommand>;

// How long a remote worker waits before asking again when attuned had no rank for it.
constexpr std::chrono::seconds kRejoin(1);

// Reports to attuned from the training thread; Stop arrives on the reader thread.
class WorkerObserver : public engine::TrainingObserver {
 public:
  // `quiet`: report nothing but the end (a data-parallel rank other than 0; rank 0 reports).
  WorkerObserver(Stream* stream, const std::atomic<bool>* stop, bool quiet)
      : stream_(stream), stop_(stop), quiet_(quiet) {}

  void OnStart(const engine::SpecCheck& setup, int64_t resumed_from_step) override {
    v1::WorkerReport report;
    *report.mutable_started() = ToWire(setup, resumed_from_step);
    Send(report);
  }
  void OnStep(const StepMetrics& metrics) override {
    v1::WorkerReport report;
    *report.mutable_step() = ToWire(metrics);
    Send(report);
  }
  void OnEval(const EvalMetrics& metrics) override {
    v1::WorkerReport report;
    *report.mutable_eval() = ToWire(metrics);
    Send(report);
  }
  void OnCheckpoint(const engine::CheckpointInfo& checkpoint) override {
    v1::WorkerReport report;
    *report.mutable_checkpoint() = ToWire(checkpoint);
    Send(report);
  }
  void OnWarning(const std::string& message) override {
    v1::WorkerReport report;
    report.set_warning(message);
    Send(report);
  }
  bool StopRequested() override { return stop_->load(); }

  // False once a write has failed (attuned is gone). Quiet workers send Finished only.
  bool Send(const v1::WorkerReport& report) {
    if (quiet_ && !report.has_finished()) return ok_;
    if (ok_ && !stream_->Write(report)) ok_ = false;
    return ok_;
  }

 private:
  Stream* const stream_;
  const std::atomic<bool>* const stop_;
  const bool quiet_;
  bool ok_ = true;  // training thread only
};

// The assignment's job, trained with `observer`.
absl::StatusOr<engine::TrainResult> Train(const v1::Assignment& assignment,
                                          const std::string& local_address,
                                          engine::TrainingObserver* observer) {
  absl::StatusOr<JobSpec> spec = JobSpecFromJson(assignment.spec_json());
  if (!spec.ok()) return spec.status();
  if (assignment.devices_size() == 0) {
    return absl::InvalidArgumentError("devices: attuned gave the worker no device");
  }
  const int rank = assignment.rank();
  if (rank < 0 || rank >= assignment.devices_size()) {
    return absl::InvalidArgumentError(absl::StrCat("rank: ", rank, " has no device among the ",
                                                   assignment.devices_size(), " given"));
  }
  engine::RunOptions options;
  options.device = assignment.devices(rank);
  options.parallel.rank = rank;
  options.parallel.world_size = std::max(1, assignment.world_size());
  options.parallel.rendezvous = assignment.rendezvous();
  options.parallel.local_address = local_address;
  options.output_dir = assignment.output_dir();
  options.resume = engine::ResumeMode::kFromLatest;
  options.data_roots.assign(assignment.data_roots().begin(), assignment.data_roots().end());
  std::cerr << "attune-worker: job " << assignment.job_id() << " on " << options.device;
  if (!options.parallel.rendezvous.empty()) {
    std::cerr << ", rank " << rank << " of " << options.parallel.world_size << " (rendezvous "
              << options.parallel.rendezvous << ")";
  }
  std::cerr << std::endl;
  return engine::RunTraining(spec->train, options, observer);
}

// One attempt: the one named `hello` (by id, or for a remote worker by the worker token).
int RunWorker(const std::string& address, const v1::Hello& first,
              const std::string& local_address) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = v1::Supervisor::NewStub(channel);
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub->Attach(&context);
  v1::WorkerReport hello;
  *hello.mutable_hello() = first;
  hello.mutable_hello()->set_pid(getpid());
  v1::SupervisorCommand command;
  if (!stream->Write(hello) || !stream->Read(&command) || !command.has_assignment()) {
    std::cerr << "attune-worker: no job from " << address << ": "
              << stream->Finish().error_message() << std::endl;
    return 2;
  }
  const v1::Assignment assignment = command.assignment();
  std::atomic<bool> stop{false};
  std::thread reader([&] {  // Stop commands; the stream's end (attuned gone) stops too
    v1::SupervisorCommand next;
    while (stream->Read(&next)) {
      if (next.has_stop()) stop = true;
      if (next.has_abort()) {
        std::cerr << "attune-worker: aborted by attuned: another rank of this attempt died"
                  << std::endl;
        _exit(4);
      }
    }
    stop = true;
  });
  WorkerObserver observer(stream.get(), &stop, /*quiet=*/assignment.rank() > 0);
  absl::StatusOr<engine::TrainResult> result = Train(assignment, local_address, &observer);
  v1::WorkerReport end;
  *end.mutable_finished() = ToWire(result);
  const bool reported = observer.Send(end);
  stream->WritesDone();
  reader.join();
  const grpc::Status status = stream->Finish();
  if (!reported || !status.ok()) {
    std::cerr << "attune-worker: lost attuned before reporting the end: " << status.error_message()
              << std::endl;
    return 3;
  }
  return 0;
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
  attune::worker::v1::Hello hello;
  hello.set_attempt(attempt);
  return attune::worker::RunWorker(supervisor, hello, local_address);
}
