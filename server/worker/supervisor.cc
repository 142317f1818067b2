#include "server/worker/supervisor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/scheduler/device_inventory.h"
#include "server/worker/attempt.h"
#include "server/worker/child_process.h"
#include "server/worker/group_workers.h"

namespace attune::worker {

// One rank's worker of an attempt (a job of one rank has one).
struct RankWorker {
  std::shared_ptr<Attempt> attempt;
  std::unique_ptr<ChildProcess> child;  // null for a rank on another machine
  std::string log;
  std::optional<int> status;      // its wait status once it has ended
  bool attach_timed_out = false;  // killed for not attaching in time
  bool killed = false;            // killed because another rank ended badly
};

namespace {

// How long after a worker has exited its stream may take to deliver the last reports.
constexpr absl::Duration kStreamDrain = absl::Seconds(10);
constexpr int kLogLines = 8;
// How long a remote worker's Attach waits for a rank to take before it is told to ask again.
constexpr absl::Duration kRemoteWait = absl::Seconds(5);
constexpr size_t kLogBytes = 2048;

absl::StatusOr<std::string> NewAttemptId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("cannot draw a worker attempt id (OpenSSL RAND_bytes)");
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

// The observer of a data-parallel job's ranks above 0: rank 0 reports for the job.
class OtherRankObserver : public engine::TrainingObserver {
 public:
  void OnStep(const StepMetrics&) override {}
  void OnEval(const EvalMetrics&) override {}
  void OnCheckpoint(const engine::CheckpointInfo&) override {}
  void OnWarning(const std::string&) override {}
  bool StopRequested() override { return false; }
};

// The wait status of a rank's worker once it has ended: a local one's own; a remote one's, when
// its stream has ended, 0 (exited) if it reported a successful end, else 1 << 8 (status 1).
std::optional<int> Poll(RankWorker& rank) {
  if (rank.child != nullptr) return rank.child->Poll();
  if (!rank.attempt->AwaitStreamEnd(absl::ZeroDuration()) || !rank.attempt->attached()) {
    return std::nullopt;
  }
  std::optional<absl::StatusOr<engine::TrainResult>> finished = rank.attempt->finished();
  return finished.has_value() && finished->ok() ? 0 : 1 << 8;
}

// Whether an ended worker reported a successful end (waiting for its stream to deliver it).
bool EndedWell(RankWorker& rank) {
  rank.attempt->AwaitStreamEnd(kStreamDrain);
  std::optional<absl::StatusOr<engine::TrainResult>> finished = rank.attempt->finished();
  return WIFEXITED(*rank.status) && WEXITSTATUS(*rank.status) == 0 && finished.has_value() &&
         finished->ok();
}

// Kills every rank still running, once one has ended without a successful end (the others
// would wait for it in their next collective).
void KillOtherRanks(std::vector<RankWorker>& ranks) {
  for (RankWorker& other : ranks) {
    if (other.status.has_value()) continue;
    other.killed = true;
    if (other.child != nullptr) {
      other.child->Signal(SIGKILL);
    } else {  // a remote worker: told to exit (it would wait in its collectives)
      other.attempt->Abort();
      other.status = SIGKILL;
    }
  }
}

// Waits for every rank's worker to end: relays stop requests meanwhile, kills a worker that does
// not attach in time, and the other ranks once one has ended badly.
void AwaitRanks(std::vector<RankWorker>& ranks, engine::TrainingObserver* observer,
                const WorkerOptions& options) {
  const absl::Time attach_deadline = absl::Now() + options.attach_timeout;
  bool killed = false;
  for (;;) {
    int running = 0;
    for (RankWorker& rank : ranks) {
      if (rank.status.has_value()) continue;
      rank.status = Poll(rank);
      if (!rank.status.has_value()) {
        ++running;
      } else if (!killed && ranks.size() > 1 && !EndedWell(rank)) {
        killed = true;
        KillOtherRanks(ranks);
      }
    }
    if (running == 0) return;
    const bool stop = observer->StopRequested();
    for (RankWorker& rank : ranks) {
      if (stop) rank.attempt->RequestStop();
      if (!rank.status.has_value() && !rank.attach_timed_out && !rank.attempt->attached() &&
          absl::Now() > attach_deadline) {
        rank.attach_timed_out = true;
        if (rank.child != nullptr) {
          rank.child->Signal(SIGKILL);
        } else {
          rank.status = SIGKILL;
        }
      }
    }
    absl::SleepFor(options.poll_interval);
  }
}

// Why `rank`'s worker ended without a result: it was killed for not attaching, or its exit, with
// the last lines of its log.
absl::Status CrashOf(const RankWorker& rank, const WorkerOptions& options) {
  const std::string worker = rank.child != nullptr
                                 ? absl::StrCat("the worker (pid ", rank.child->pid(), ")")
                                 : std::string("the remote worker");
  std::string reason =
      rank.attach_timed_out
          ? absl::StrCat(worker, " did not connect within ",
                         absl::FormatDuration(options.attach_timeout), " and was killed")
          : absl::StrCat(worker, " ", DescribeWaitStatus(*rank.status),
                         " before it reported the job's end");
  const std::string tail = LastLines(rank.log, kLogLines, kLogBytes);
  if (!tail.empty()) absl::StrAppend(&reason, "; the last lines of ", rank.log, ":\n", tail);
  return absl::UnavailableError(reason);
}

// The attempt's result: rank 0's successful end; else the end or the crash of the first rank
// that failed by itself (not killed because another rank had failed).
absl::StatusOr<engine::TrainResult> ResultOfRanks(std::vector<RankWorker>& ranks,
                                                  engine::TrainingObserver* observer,
                                                  const WorkerOptions& options) {
  for (RankWorker& rank : ranks) rank.attempt->AwaitStreamEnd(kStreamDrain);
  std::optional<absl::StatusOr<engine::TrainResult>> first = ranks[0].attempt->finished();
  if (first.has_value() && (first->ok() || ranks.size() == 1)) {
    if (!(WIFEXITED(*ranks[0].status) && WEXITSTATUS(*ranks[0].status) == 0)) {
      observer->OnWarning(absl::StrCat("the worker (pid ", ranks[0].child->pid(), ") ",
                                       DescribeWaitStatus(*ranks[0].status),
                                       " after it reported the job's end"));
    }
    return *std::move(first);
  }
  for (size_t r = 0; r < ranks.size(); ++r) {
    if (ranks[r].killed) continue;
    std::optional<absl::StatusOr<engine::TrainResult>> finished = ranks[r].attempt->finished();
    if (finished.has_value() && finished->ok()) continue;
    absl::Status why = finished.has_value() ? finished->status() : CrashOf(ranks[r], options);
    if (ranks.size() == 1) return why;
    return absl::Status(why.code(),
                        absl::StrCat("rank ", r, " of ", ranks.size(), ": ", why.message()));
  }
  return CrashOf(ranks[0], options);
}

// HOST:PORT on the IPv4 `host` with a port that was free a moment ago, for the ranks'
// rendezvous.
absl::StatusOr<std::string> FreeAddress(const std::string& host) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--worker-listen: '", host, "' is not an IPv4 address"));
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  socklen_t length = sizeof(address);
  const bool ok = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&address), length) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  if (fd >= 0) close(fd);
  if (!ok) return absl::UnavailableError("cannot find a free loopback port for the ranks");
  return absl::StrCat(host, ":", ntohs(address.sin_port));
}

}  // namespace

v1::Assignment MakeAssignment(const store::Job& job, const std::vector<std::string>& devices,
                              const std::string& output_dir,
                              const std::vector<std::string>& data_roots) {
  v1::Assignment assignment;
  assignment.set_job_id(job.id);
  assignment.set_spec_json(JobSpecToJson(job.spec));
  for (const std::string& device : devices) assignment.add_devices(device);
  assignment.set_output_dir(output_dir);
  for (const std::string& root : data_roots) assignment.add_data_roots(root);
  return assignment;
}

grpc::Status Supervisor::Attach(grpc::ServerContext* /*context*/, WorkerStream* stream) {
  v1::WorkerReport report;
  if (!stream->Read(&report) || !report.has_hello()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a worker's first report is Hello");
  }
  std::shared_ptr<Attempt> attempt;
  grpc::Status found = FindAttempt(report.hello(), &attempt);
  if (!found.ok()) return found;
  if (!attempt->Attach(stream)) {
    return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "this attempt has a worker already");
  }
  while (stream->Read(&report)) attempt->Report(report);
  attempt->EndStream();
  return grpc::Status::OK;
}

grpc::Status Supervisor::FindAttempt(const v1::Hello& hello, std::shared_ptr<Attempt>* attempt) {
  if (hello.attempt().empty()) {
    const std::string& token = hello.join_token();
    if (join_token_.empty() || token.size() != join_token_.size() ||
        CRYPTO_memcmp(token.data(), join_token_.data(), token.size()) != 0) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "not a valid worker token");
    }
    absl::MutexLock lock(&mu_);
    auto waiting = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !remote_waiting_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&waiting), kRemoteWait)) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no job rank waits for a remote worker");
    }
    *attempt = remote_waiting_.front();
    remote_waiting_.pop_front();
    return grpc::Status::OK;
  }
  absl::MutexLock lock(&mu_);
  auto it = attempts_.find(hello.attempt());
  if (it == attempts_.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such worker attempt");
  }
  *attempt = it->second;
  return grpc::Status::OK;
}

std::shared_ptr<Attempt> Supervisor::Open(v1::Assignment assignment,
                                          engine::TrainingObserver* observer, bool remote) {
  absl::StatusOr<std::string> id = NewAttemptId();
  if (!id.ok()) return nullptr;
  auto attempt = std::make_shared<Attempt>(*id, std::move(assignment), observer);
  absl::MutexLock lock(&mu_);
  attempts_[attempt->id()] = attempt;
  if (remote) remote_waiting_.push_back(attempt);
  return attempt;
}

void Supervisor::Close(const std::shared_ptr<Attempt>& attempt) {
  attempt->Detach();
  absl::MutexLock lock(&mu_);
  attempts_.erase(attempt->id());
  remote_waiting_.erase(std::remove(remote_waiting_.begin(), remote_waiting_.end(), attempt),
                        remote_waiting_.end());
}

WorkerJobRunner::WorkerJobRunner(WorkerOptions options, Supervisor* supervisor)
    : options_(std::move(options)),
      supervisor_(supervisor),
      groups_(options_.shares_base ? std::make_unique<GroupWorkers>(options_, supervisor)
                                   : nullptr) {}

WorkerJobRunner::~WorkerJobRunner() = default;

absl::StatusOr<engine::SpecCheck> WorkerJobRunner::Check(const TrainSpec& spec) {
  engine::CheckOptions options;
  options.data_roots = options_.data_roots;
  return engine::CheckSpec(spec, options);
}

absl::StatusOr<engine::TrainResult> WorkerJobRunner::Run(const store::Job& job,
                                                         const std::vector<std::string>& devices,
                                                         const std::string& output_dir,
                                                         engine::TrainingObserver* observer) {
  if (devices.empty()) {
    return absl::InvalidArgumentError("devices: the scheduler gave the job no device");
  }
  if (groups_ != nullptr && groups_->Takes(job, devices, options_.one_rank_collectives)) {
    return groups_->Run(job, devices[0], output_dir, observer);
  }
  std::error_code ec;
  std::filesystem::create_directories(output_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create ", output_dir, ": ", ec.message()));
  }
  std::vector<RankWorker> ranks(devices.size());
  OtherRankObserver other_ranks;
  absl::Status started = StartRanks(job, devices, output_dir, observer, &other_ranks, ranks);
  absl::StatusOr<engine::TrainResult> result = absl::InternalError("not started");
  if (started.ok()) {
    AwaitRanks(ranks, observer, options_);
    result = ResultOfRanks(ranks, observer, options_);
  } else {
    result = started;
  }
  for (RankWorker& rank : ranks) {
    if (rank.attempt != nullptr) supervisor_->Close(rank.attempt);
  }
  return result;
}

absl::Status WorkerJobRunner::StartRanks(const store::Job& job,
                                         const std::vector<std::string>& devices,
                                         const std::string& output_dir,
                                         engine::TrainingObserver* observer,
                                         engine::TrainingObserver* other_ranks,
                                         std::vector<RankWorker>& ranks) {
  const int world = static_cast<int>(ranks.size());
  if (devices[0] == scheduler::kRemoteCpu) {
    return absl::InvalidArgumentError("devices: rank 0 must run beside attuned, not remote-cpu");
  }
  const bool remote = std::count(devices.begin(), devices.end(), scheduler::kRemoteCpu) > 0;
  if (remote && options_.remote_host.empty()) {
    return absl::InvalidArgumentError("devices: remote-cpu needs attuned --worker-listen");
  }
  std::vector<std::string> assigned = devices;  // a remote worker trains on its own CPU
  std::replace(assigned.begin(), assigned.end(), std::string(scheduler::kRemoteCpu),
               std::string("cpu"));
  std::string rendezvous;
  if (world > 1 || options_.one_rank_collectives) {
    ASSIGN_OR_RETURN(rendezvous, FreeAddress(remote ? options_.remote_host : "127.0.0.1"));
  }
  for (int r = 0; r < world; ++r) {
    v1::Assignment assignment = MakeAssignment(job, assigned, output_dir, options_.data_roots);
    assignment.set_rank(r);
    assignment.set_world_size(world);
    assignment.set_rendezvous(rendezvous);
    RankWorker& rank = ranks[r];
    const bool elsewhere = devices[r] == scheduler::kRemoteCpu;
    rank.attempt =
        supervisor_->Open(std::move(assignment), r == 0 ? observer : other_ranks, elsewhere);
    if (rank.attempt == nullptr) return absl::InternalError("cannot open a worker attempt");
    if (elsewhere) continue;
    rank.log =
        r == 0 ? output_dir + "/worker.log" : absl::StrCat(output_dir, "/worker-rank", r, ".log");
    const std::vector<std::string> args = {"--supervisor", options_.supervisor_address, "--attempt",
                                           rank.attempt->id()};
    ASSIGN_OR_RETURN(rank.child, ChildProcess::Start(options_.worker_binary, args, rank.log));
  }
  return absl::OkStatus();
}

}  // namespace attune::worker
