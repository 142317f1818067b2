// attuned: the attune server. Reads its flags (here only), locks the data dir (one server per
// data dir), opens the store, starts the scheduler and the gRPC service, prints `attuned
// listening on HOST:PORT` (the only gRPC port it serves), and runs until SIGTERM or SIGINT. On
// a signal it stops accepting RPCs, lets running jobs checkpoint (the scheduler leaves them
// QUEUED for the next start) and exits 0. SIGHUP re-reads the --auth-tokens file.
//
// Who may call: without --auth-tokens only loopback clients (said at start); with it every RPC
// and HTTP endpoint but /healthz needs a token (server/auth/). A --listen or --http address that
// is not loopback needs TLS and tokens, or --insecure.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/api/attune_service.h"
#include "server/api/data_roots.h"
#include "server/api/grpc_metrics.h"
#include "server/api/request_limits.h"
#include "server/auth/authenticator.h"
#include "server/auth/listen_check.h"
#include "server/auth/tls_files.h"
#include "server/data_dir_lock.h"
#include "server/engine/trainer.h"
#include "server/http/http_server.h"
#include "server/http/nvml_device_stats.h"
#include "server/http/scheduler_jobs_source.h"
#include "server/http/service_metrics.h"
#include "server/runner_flags.h"
#include "server/scheduler/job_runner.h"
#include "server/scheduler/scheduler.h"
#include "server/store/store.h"
#include "server/worker/job_runners.h"
#include "server/worker/supervisor.h"

namespace attune {
namespace {

namespace fs = std::filesystem;

struct ServerOptions {
  // gRPC address HOST:PORT; port 0 picks a free port (printed on start).
  std::string listen = "127.0.0.1:50051";
  // HTTP address for metrics and the dashboard; empty = off.
  std::string http;
  // Holds attune.db (SQLite) and the artifacts (jobs/<id>/checkpoints/...). Created if missing.
  std::string data_dir = "./attune-data";
  // "auto" (every CUDA device, else the CPU), "cpu", or a list such as "cuda:0,cuda:1".
  std::string devices = "auto";
  // Concurrent jobs per device, >= 1.
  int slots_per_device = 1;
  // Directories job paths may point into, besides the data dir (always one).
  std::vector<std::string> data_roots;
  // The tokens file (server/auth/tokens_file.h); empty = loopback clients only.
  std::string auth_tokens;
  // Certificate, key and (for mutual TLS) client CA of both listeners; empty = plaintext.
  auth::TlsFiles tls;
  // Serve a non-loopback address without TLS and tokens.
  bool insecure = false;
  // Priority preemption (scheduler.h), and how long a preempted job is safe from another.
  std::string preemption = "on";
  int preemption_grace_s = 600;
  double retry_backoff_s = 5;
  // Jobs in attune-worker processes ("on", server/worker/supervisor.h) or on threads of attuned
  // ("off": one crash takes the server down; for debugging).
  std::string job_processes = "on";
  // The worker flags (--worker-binary, --worker-listen, ...); Serve fills in the rest.
  worker::JobRunnerOptions runner;
};

// The exposure rule (listen_check.h) for both listeners, and the TLS files.
absl::Status CheckSecurityOptions(const ServerOptions& options) {
  RETURN_IF_ERROR(auth::CheckTlsFiles(options.tls));
  const auth::Transport transport =
      options.tls.enabled() ? auth::Transport::kTls : auth::Transport::kPlaintext;
  const auth::Tokens tokens =
      options.auth_tokens.empty() ? auth::Tokens::kOff : auth::Tokens::kRequired;
  const auth::Exposure exposure =
      options.insecure ? auth::Exposure::kAllowInsecure : auth::Exposure::kRefuseInsecure;
  RETURN_IF_ERROR(auth::CheckExposure("--listen", options.listen, transport, tokens, exposure));
  if (!options.http.empty()) {
    RETURN_IF_ERROR(auth::CheckExposure("--http", options.http, transport, tokens, exposure));
  }
  return absl::OkStatus();
}

// gRPC's TLS credentials from the files (client certificates required with a client CA), or
// plaintext ones.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcCredentials(
    const auth::TlsFiles& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(
      tls.mutual() ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                   : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.private_key, auth::ReadPem("--tls-key", tls.key_path));
  ASSIGN_OR_RETURN(pair.cert_chain, auth::ReadPem("--tls-cert", tls.cert_path));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (tls.mutual()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, auth::ReadPem("--tls-client-ca", tls.client_ca_path));
  }
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<std::vector<std::string>> ResolveDevices(const std::string& flag) {
  if (flag == "auto") {
    std::vector<std::string> cuda = engine::CudaDevices();
    if (cuda.empty()) return std::vector<std::string>{"cpu"};
    return cuda;
  }
  std::vector<std::string> devices = absl::StrSplit(flag, ',', absl::SkipWhitespace());
  if (devices.empty()) {
    return absl::InvalidArgumentError("--devices: empty; expected auto, cpu or cuda:N[,cuda:M]");
  }
  return devices;  // the scheduler checks the names
}

// "HOST:PORT" with PORT replaced by the bound port.
std::string BoundAddress(const std::string& listen, int port) {
  size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  return absl::StrCat(host, ":", port);
}

// The checked options: the data directory (created, then resolved), the data roots and the
// devices.
struct ResolvedOptions {
  std::string data_dir;
  api::DataRoots data_roots;
  std::vector<std::string> devices;
};

absl::StatusOr<ResolvedOptions> ResolveOptions(const ServerOptions& options) {
  if (options.slots_per_device < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--slots-per-device: ", options.slots_per_device, " must be >= 1"));
  }
  std::error_code ec;
  fs::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--data-dir: cannot create ", options.data_dir, ": ", ec.message()));
  }
  const std::string data_dir = fs::canonical(options.data_dir).string();
  // The data dir, plus what --data-roots names; never the current directory by default.
  std::vector<std::string> roots = {data_dir};
  roots.insert(roots.end(), options.data_roots.begin(), options.data_roots.end());
  ASSIGN_OR_RETURN(api::DataRoots data_roots, api::DataRoots::Create(roots));
  ASSIGN_OR_RETURN(std::vector<std::string> devices, ResolveDevices(options.devices));
  return ResolvedOptions{data_dir, std::move(data_roots), std::move(devices)};
}

absl::StatusOr<std::unique_ptr<scheduler::Scheduler>> StartScheduler(
    const ServerOptions& options, const ResolvedOptions& resolved, store::Store* store,
    scheduler::JobRunner* runner, const auth::Authenticator* auth) {
  scheduler::SchedulerOptions scheduler_options;
  // The tenants' limits as the tokens file says now (SIGHUP included).
  scheduler_options.tenant_limits = [auth](const std::string& owner) {
    const auth::TenantQuota quota = auth->QuotaOf(owner);
    return scheduler::TenantLimits{quota.max_jobs, quota.max_gpus};
  };
  scheduler_options.devices = resolved.devices;
  scheduler_options.slots_per_device = options.slots_per_device;
  scheduler_options.artifacts_dir = resolved.data_dir;
  scheduler_options.preemption = options.preemption == "on";
  scheduler_options.preemption_grace = absl::Seconds(options.preemption_grace_s);
  scheduler_options.crash_backoff = absl::Seconds(options.retry_backoff_s);
  scheduler_options.shares_device = worker::ShareDeviceRule(options.runner);
  scheduler_options.share_base = worker::ShareBaseRule(options.runner);
  return scheduler::Scheduler::Create(scheduler_options, store, runner);
}

// Starts the gRPC server on `listen` with `service`, health checking, reflection and the call
// metrics; sets *port to the bound port. UNAVAILABLE when it cannot listen.
//
// SO_REUSEPORT is off: with it on, a second server on the same port starts too and the kernel
// splits the clients between the two; and with port 0 gRPC opens one more listener per extra
// polling set (the callback queue of the health service), each bound to port 0 again, so the
// server also answered on a port it never printed.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartGrpc(const ServerOptions& options,
                                                        api::AttuneService* service,
                                                        http::ServiceMetrics* metrics, int* port) {
  const std::string& listen = options.listen;
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                   GrpcCredentials(options.tls));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(api::kMaxRequestBytes);
  builder.AddListeningPort(listen, credentials, port);
  builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(api::MakeGrpcMetricsInterceptorFactory(metrics->shared_registry()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *port == 0) {
    return absl::UnavailableError(
        absl::StrCat("--listen: cannot listen on ", listen, " (in use, or not a local address)"));
  }
  server->GetHealthCheckService()->SetServingStatus(v1::Attune::service_full_name(), true);
  return server;
}

// The --http listener (/metrics, the dashboard and its JSON endpoints); nullptr when `address`
// is empty.
absl::StatusOr<std::unique_ptr<http::HttpServer>> StartHttp(const ServerOptions& options,
                                                            const auth::Authenticator* auth,
                                                            http::SchedulerJobsSource* jobs,
                                                            http::ServiceMetrics* metrics) {
  if (options.http.empty()) return std::unique_ptr<http::HttpServer>();
  ASSIGN_OR_RETURN(http::HttpServerOptions http_options, http::ParseHttpAddress(options.http));
  http_options.authenticator = auth;
  http_options.tls = options.tls;
  ASSIGN_OR_RETURN(std::unique_ptr<http::HttpServer> server,
                   http::HttpServer::Start(http_options, jobs, metrics));
  std::cout << "attuned http on " << server->address() << std::endl;
  return server;
}

// Signals were blocked in every thread before any started (see main); waits for them here:
// SIGHUP re-reads the tokens file (a broken file keeps the old tokens, and says why), SIGTERM
// or SIGINT returns.
void WaitForShutdownSignal(auth::Authenticator* auth) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  int signal_number = 0;
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    const absl::Status reloaded = auth->Reload();
    std::cerr << "attuned: SIGHUP: "
              << (reloaded.ok() ? "tokens re-read"
                                : absl::StrCat("kept the previous tokens: ", reloaded.message()))
              << std::endl;
  }
  std::cerr << "attuned: signal " << signal_number << ", shutting down" << std::endl;
}

// Stops accepting RPCs; open watches are cancelled after a short grace period and notice it
// within a second. Then lets running jobs checkpoint; they stay QUEUED for the next start.
void Shutdown(grpc::Server* server, http::HttpServer* http_server, scheduler::Scheduler* scheduler,
              grpc::Server* workers) {
  server->GetHealthCheckService()->Shutdown();
  if (http_server != nullptr) http_server->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  scheduler->Shutdown();  // the workers checkpoint and report their end first
  if (workers != nullptr) workers->Shutdown(std::chrono::system_clock::now());
  server->Wait();
}

// options -> data dir lock -> store -> scheduler -> gRPC -> HTTP -> wait for a signal -> shut
// down.
absl::Status Serve(const ServerOptions& options) {
  RETURN_IF_ERROR(CheckSecurityOptions(options));
  ASSIGN_OR_RETURN(
      std::unique_ptr<auth::Authenticator> auth,
      auth::Authenticator::Create(
          options.auth_tokens, options.insecure ? auth::Peers::kAny : auth::Peers::kLoopbackOnly));
  ASSIGN_OR_RETURN(ResolvedOptions resolved, ResolveOptions(options));
  ASSIGN_OR_RETURN(std::unique_ptr<DataDirLock> lock, DataDirLock::Acquire(resolved.data_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store,
                   store::Store::Open(resolved.data_dir + "/attune.db"));
  // The engine opens every file a job reads inside the same roots (common/confined_file.h).
  worker::Supervisor supervisor;
  std::unique_ptr<grpc::Server> workers;
  worker::JobRunnerOptions runner_options = options.runner;
  runner_options.job_processes = options.job_processes == "on";
  runner_options.data_dir = resolved.data_dir;
  runner_options.data_roots = resolved.data_roots.roots();
  std::string listen_bound;
  ASSIGN_OR_RETURN(std::unique_ptr<scheduler::JobRunner> runner,
                   worker::MakeJobRunner(runner_options, &supervisor, &workers, &listen_bound));
  if (!listen_bound.empty()) std::cerr << "attuned: remote workers on " << listen_bound << "\n";
  ASSIGN_OR_RETURN(std::unique_ptr<scheduler::Scheduler> scheduler,
                   StartScheduler(options, resolved, store.get(), runner.get(), auth.get()));
  // Metrics: read from the scheduler at scrape time; gRPC calls counted by an interceptor.
  http::SchedulerJobsSource jobs_source(scheduler.get());
  // GPU series through NVML where the driver has it; only the cpu series otherwise.
  http::ServiceMetrics::Options metrics_options;
  metrics_options.device_stats =
      http::ProcessAndGpuDeviceStats(http::NvmlDeviceStats::Create().value_or(nullptr));
  http::ServiceMetrics metrics(&jobs_source, metrics_options);
  api::AttuneService service(scheduler.get(), store.get(), std::move(resolved.data_roots),
                             auth.get());
  int port = 0;
  absl::StatusOr<std::unique_ptr<grpc::Server>> server =
      StartGrpc(options, &service, &metrics, &port);
  if (!server.ok()) {
    scheduler->Shutdown();
    return server.status();
  }
  absl::StatusOr<std::unique_ptr<http::HttpServer>> http_server =
      StartHttp(options, auth.get(), &jobs_source, &metrics);
  if (!http_server.ok()) {
    (*server)->Shutdown();
    scheduler->Shutdown();
    return http_server.status();
  }
  std::cout << "attuned listening on " << BoundAddress(options.listen, port) << std::endl;
  std::cerr << "attuned: devices " << absl::StrJoin(resolved.devices, ",") << " x"
            << options.slots_per_device << " slots; data dir " << resolved.data_dir << std::endl;
  std::cerr << "attuned: "
            << (auth->requires_tokens()
                    ? absl::StrCat("tokens from ", options.auth_tokens, " required")
                    : std::string(options.insecure
                                      ? "no --auth-tokens, --insecure: accepting every client"
                                      : "no --auth-tokens: accepting loopback clients only"))
            << (options.tls.enabled() ? "; TLS on" : "; TLS off")
            << (options.tls.mutual() ? " (client certificates required)" : "") << std::endl;
  WaitForShutdownSignal(auth.get());
  Shutdown(server->get(), http_server->get(), scheduler.get(), workers.get());
  return absl::OkStatus();
}

}  // namespace
}  // namespace attune

int main(int argc, char** argv) {
  attune::ServerOptions options;
  CLI::App app{"attuned: the attune fine-tuning server"};
  app.add_option("--listen", options.listen, "gRPC address HOST:PORT (port 0 = a free port)");
  app.add_option("--http", options.http, "metrics/dashboard address HOST:PORT (empty = off)");
  app.add_option("--data-dir", options.data_dir, "database and artifacts directory");
  app.add_option("--devices", options.devices, "auto | cpu | cuda:0,cuda:1,...");
  app.add_option("--slots-per-device", options.slots_per_device, "concurrent jobs per device");
  app.add_option("--data-roots", options.data_roots,
                 "comma-separated directories job files may come from, besides the data dir "
                 "(default: the data dir only)")
      ->delimiter(',');
  app.add_option("--auth-tokens", options.auth_tokens,
                 "tokens file: lines 'SHA256 TENANT [admin] [settings]' (default: loopback "
                 "clients only); re-read on SIGHUP");
  app.add_option("--tls-cert", options.tls.cert_path, "PEM certificate for gRPC and HTTP");
  app.add_option("--tls-key", options.tls.key_path, "PEM private key of --tls-cert");
  app.add_option("--tls-client-ca", options.tls.client_ca_path,
                 "PEM CA bundle; clients must present a certificate it signed (mutual TLS)");
  app.add_flag("--insecure", options.insecure,
               "serve a non-loopback --listen/--http without TLS and tokens");
  app.add_option("--preemption", options.preemption,
                 "on|off: a queued job of higher priority stops a lower one, which re-queues and "
                 "resumes from its checkpoint (default on)")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--preemption-grace", options.preemption_grace_s,
                 "seconds a preempted job cannot be preempted again (default 600)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--retry-backoff", options.retry_backoff_s,
                 "seconds before a crashed job's first restart (its max_retries); doubles with "
                 "each retry (default 5)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--job-processes", options.job_processes,
                 "on|off: each job trains in its own attune-worker process, so a crash fails only "
                 "its attempt (default on); off trains on attuned's threads")
      ->check(CLI::IsMember({"on", "off"}));
  attune::AddRunnerFlags(app, &options.runner);
  CLI11_PARSE(app, argc, argv);

  // Block the shutdown signals in this thread before any other starts, so every thread inherits
  // the mask and only Serve's sigwait receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::Status status = attune::Serve(options);
  if (!status.ok()) {
    std::cerr << "attuned: " << status.message() << std::endl;
    return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
