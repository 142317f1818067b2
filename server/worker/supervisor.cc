#include "server/worker/supervisor.h"

#include <openssl/rand.h>
#include <signal.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/worker/attempt.h"
#include "server/worker/child_process.h"

namespace attune::worker {
namespace {

// How long after a worker has exited its stream may take to deliver the last reports.
constexpr absl::Duration kStreamDrain = absl::Seconds(10);
constexpr int kLogLines = 8;
constexpr size_t kLogBytes = 2048;

absl::StatusOr<std::string> NewAttemptId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("cannot draw a worker attempt id (OpenSSL RAND_bytes)");
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

// Waits for `child` to end: relays stop requests to its attempt meanwhile and kills a worker that
// does not attach in time. Returns its wait status.
int AwaitWorker(ChildProcess& child, Attempt& attempt, engine::TrainingObserver* observer,
                const WorkerOptions& options, bool* attach_timed_out) {
  const absl::Time attach_deadline = absl::Now() + options.attach_timeout;
  for (;;) {
    if (std::optional<int> status = child.Poll()) return *status;
    if (observer->StopRequested()) attempt.RequestStop();
    if (!*attach_timed_out && !attempt.attached() && absl::Now() > attach_deadline) {
      *attach_timed_out = true;
      child.Signal(SIGKILL);
    }
    absl::SleepFor(options.poll_interval);
  }
}

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

}  // namespace

grpc::Status Supervisor::Attach(grpc::ServerContext* /*context*/, WorkerStream* stream) {
  v1::WorkerReport report;
  if (!stream->Read(&report) || !report.has_hello()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a worker's first report is Hello");
  }
  std::shared_ptr<Attempt> attempt;
  {
    absl::MutexLock lock(&mu_);
    auto it = attempts_.find(report.hello().attempt());
    if (it != attempts_.end()) attempt = it->second;
  }
  if (attempt == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such worker attempt");
  }
  if (!attempt->Attach(stream)) {
    return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "this attempt has a worker already");
  }
  while (stream->Read(&report)) attempt->Report(report);
  attempt->EndStream();
  return grpc::Status::OK;
}

std::shared_ptr<Attempt> Supervisor::Open(v1::Assignment assignment,
                                          engine::TrainingObserver* observer) {
  absl::StatusOr<std::string> id = NewAttemptId();
  if (!id.ok()) return nullptr;
  auto attempt = std::make_shared<Attempt>(*id, std::move(assignment), observer);
  absl::MutexLock lock(&mu_);
  attempts_[attempt->id()] = attempt;
  return attempt;
}

void Supervisor::Close(const std::shared_ptr<Attempt>& attempt) {
  attempt->Detach();
  absl::MutexLock lock(&mu_);
  attempts_.erase(attempt->id());
}

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
  std::error_code ec;
  std::filesystem::create_directories(output_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create ", output_dir, ": ", ec.message()));
  }
  std::shared_ptr<Attempt> attempt =
      supervisor_->Open(MakeAssignment(job, devices, output_dir, options_.data_roots), observer);
  if (attempt == nullptr) return absl::InternalError("cannot open a worker attempt");
  const std::string log = output_dir + "/worker.log";
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(
      options_.worker_binary,
      {"--supervisor", options_.supervisor_address, "--attempt", attempt->id()}, log);
  if (!child.ok()) {
    supervisor_->Close(attempt);
    return child.status();
  }
  bool attach_timed_out = false;
  const int status = AwaitWorker(**child, *attempt, observer, options_, &attach_timed_out);
  attempt->AwaitStreamEnd(kStreamDrain);
  std::optional<absl::StatusOr<engine::TrainResult>> finished = attempt->finished();
  const std::string worker = absl::StrCat("the worker (pid ", (*child)->pid(), ")");
  if (finished.has_value() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    observer->OnWarning(
        absl::StrCat(worker, " ", DescribeWaitStatus(status), " after it reported the job's end"));
  }
  supervisor_->Close(attempt);
  if (finished.has_value()) return *std::move(finished);
  std::string reason =
      attach_timed_out
          ? absl::StrCat(worker, " did not connect within ",
                         absl::FormatDuration(options_.attach_timeout), " and was killed")
          : absl::StrCat(worker, " ", DescribeWaitStatus(status),
                         " before it reported the job's end");
  const std::string tail = LastLines(log, kLogLines, kLogBytes);
  if (!tail.empty()) absl::StrAppend(&reason, "; the last lines of ", log, ":\n", tail);
  return absl::UnavailableError(reason);
}

absl::StatusOr<std::unique_ptr<grpc::Server>> ServeSupervisor(const std::string& socket_path,
                                                              Supervisor* supervisor,
                                                              std::string* address) {
  if (socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--data-dir: the workers' socket ", socket_path, " is longer than a Unix socket path (",
        sizeof(sockaddr_un{}.sun_path) - 1, " bytes); use a shorter data directory"));
  }
  const std::filesystem::path dir = std::filesystem::path(socket_path).parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!ec) {
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, ec);
  }
  if (ec)
    return absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  *address = "unix:" + socket_path;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(*address, grpc::InsecureServerCredentials());
  builder.RegisterService(supervisor);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot listen for workers on ", *address));
  }
  return server;
}

std::string DefaultWorkerBinary() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (ec ? std::filesystem::path("attune-worker") : self.parent_path() / "attune-worker")
      .string();
}

}  // namespace attune::worker
