#include "server/http/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/http/browser_login.h"
#include "server/http/dashboard_assets.h"
#include "server/http/event_streams.h"
#include "server/http/json_views.h"
#include "server/http/sweep_view.h"

namespace attune::http {
namespace {

constexpr int kDefaultEventLimit = 1000;
constexpr int kMaxEventLimit = 10000;
constexpr int kListenBacklog = 512;
// How long one write may wait for a client that does not read before the connection is dropped.
constexpr time_t kWriteTimeoutSeconds = 5;

int HttpCode(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

void ReplyJson(httplib::Response& res, const nlohmann::json& body, int code = 200) {
  res.status = code;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(), "application/json");
}

void ReplyError(httplib::Response& res, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    res.set_header("WWW-Authenticate", "Bearer");
  }
  ReplyJson(res, {{"error", std::string(status.message())}}, HttpCode(status));
}

// The same words as for an id that does not exist, so that other tenants' jobs stay invisible.
absl::Status UnknownJob(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("job '", id, "' not found"));
}

// httplib's server: HTTPS with the TLS files, else plain HTTP. nullptr when the TLS files do not
// make a working server.
std::unique_ptr<httplib::Server> MakeServer(const auth::TlsFiles& tls) {
  if (!tls.enabled()) return std::make_unique<httplib::Server>();
  auto server =
      std::make_unique<httplib::SSLServer>(tls.cert_path.c_str(), tls.key_path.c_str(),
                                           tls.mutual() ? tls.client_ca_path.c_str() : nullptr);
  if (!server->is_valid()) return nullptr;
  return server;
}

// 503 with Retry-After for a stream over the limit. The body comes from a provider that returns
// false once it has written everything, which makes httplib close the connection instead of
// holding a thread to wait for the client's next request.
// Reads an integer query parameter; `fallback` when absent.
absl::StatusOr<int64_t> IntParam(const httplib::Request& req, const char* name, int64_t fallback,
                                 int64_t min_value, int64_t max_value) {
  if (!req.has_param(name)) return fallback;
  int64_t value = 0;
  const std::string text = req.get_param_value(name);
  if (!absl::SimpleAtoi(text, &value) || value < min_value || value > max_value) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": '", text, "' is not an integer in ", min_value, "..", max_value));
  }
  return value;
}

}  // namespace

class HttpServer::Impl {
 public:
  Impl(const HttpServerOptions& options, JobsSource* source, ServiceMetrics* metrics)
      : options_(options),
        source_(source),
        metrics_(metrics),
        server_(MakeServer(options.tls)),
        streams_(source, options.max_streams) {}

  ~Impl() { Shutdown(); }

  absl::Status Start() {
    if (options_.max_streams < 1 || options_.max_streams >= options_.threads) {
      return absl::InvalidArgumentError(
          absl::StrCat("max_streams: ", options_.max_streams, " must be in 1..",
                       options_.threads - 1, " (threads - 1, threads = ", options_.threads, ")"));
    }
    if (server_ == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls-cert: ", options_.tls.cert_path, " and --tls-key: ", options_.tls.key_path,
          " do not make a TLS server (not PEM, or the key does not match)"));
    }
    const int threads = options_.threads;
    server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    server_->set_write_timeout(kWriteTimeoutSeconds, 0);
    // httplib's default also sets SO_REUSEPORT, which would let a second server share a busy
    // port silently; SO_REUSEADDR alone allows quick restarts and still fails on a busy port.
    // The socket bound last is the listener (httplib tries one address after another).
    int listener = -1;
    server_->set_socket_options([&listener](int sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      listener = sock;
    });
    Routes();
    if (options_.port == 0) {
      port_ = server_->bind_to_any_port(options_.host);
    } else {
      port_ = server_->bind_to_port(options_.host, options_.port) ? options_.port : -1;
    }
    if (port_ <= 0) {
      return absl::UnavailableError(
          absl::StrCat("--http: cannot bind ", options_.host, ":", options_.port));
    }
    // httplib listens with a backlog of 5: a burst of connections then waits out a SYN
    // retransmit (1 s and more). A second listen() only raises the backlog.
    listen(listener, kListenBacklog);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // httplib's stop() does nothing until the accept loop runs; wait for it so that a Shutdown
    // right after Start cannot be lost.
    while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return absl::OkStatus();
  }

  void Shutdown() {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    streams_.Stop();
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  int port() const { return port_; }
  std::string address() const {
    const bool v6 = options_.host.find(':') != std::string::npos;
    return v6 ? absl::StrCat("[", options_.host, "]:", port_)
              : absl::StrCat(options_.host, ":", port_);
  }

 private:
  // The caller of `req`; everyone is an admin without an authenticator.
  absl::StatusOr<auth::Caller> CallerOf(const httplib::Request& req) const {
    if (options_.authenticator == nullptr) return auth::Caller{"", /*admin=*/true, {}};
    std::string authorization = req.get_header_value("Authorization");
    if (authorization.empty()) {  // a browser signed in at /login (browser_login.h)
      const std::string token = TokenFromCookies(req.get_header_value("Cookie"));
      if (!token.empty()) authorization = "Bearer " + token;
    }
    return options_.authenticator->Authenticate(authorization, req.remote_addr);
  }

  // The jobs `caller` may see, for the sweep views.
  static JobFilter VisibleTo(const auth::Caller& caller) {
    return [caller](const JobView& job) { return caller.CanSee(job.owner); };
  }

  // Job `id` when `req`'s caller may see it; NOT_FOUND as for an unknown id otherwise.
  absl::StatusOr<JobView> VisibleJob(const httplib::Request& req, const std::string& id) {
    absl::StatusOr<auth::Caller> caller = CallerOf(req);
    if (!caller.ok()) return caller.status();
    absl::StatusOr<JobView> job = source_->GetJob(id);
    if (job.ok() && !caller->CanSee(job->owner)) return UnknownJob(id);
    return job;
  }

  void Routes() {
    AccessRoutes();
    ServiceRoutes();
    JobRoutes();
    SweepRoutes();
  }

  // Every endpoint but /healthz (and the sign-in POST) needs a caller the authenticator accepts.
  void AccessRoutes() {
    server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (req.path == "/healthz" || (req.path == "/login" && req.method == "POST")) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      absl::StatusOr<auth::Caller> caller = CallerOf(req);
      if (caller.ok()) return httplib::Server::HandlerResponse::Unhandled;
      if (req.path == "/") {  // a browser: the sign-in form
        res.status = 401;
        res.set_content(LoginPage(""), "text/html; charset=utf-8");
      } else {
        ReplyError(res, caller.status());
      }
      return httplib::Server::HandlerResponse::Handled;
    });
    server_->Post("/login", [this](const httplib::Request& req, httplib::Response& res) {
      if (options_.authenticator == nullptr) return res.set_redirect("/", 303);
      const std::string token = req.get_param_value("token");
      absl::StatusOr<auth::Caller> caller =
          options_.authenticator->Authenticate("Bearer " + token, req.remote_addr);
      if (!caller.ok()) {
        res.status = 401;
        return res.set_content(LoginPage(std::string(caller.status().message())),
                               "text/html; charset=utf-8");
      }
      res.set_header("Set-Cookie", SessionCookie(token, options_.tls.enabled()));
      res.set_redirect("/", 303);
    });
  }

  // /metrics, /healthz and the dashboard's files.
  void ServiceRoutes() {
    server_->Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      absl::StatusOr<auth::Caller> caller = CallerOf(req);
      if (!caller.ok()) return ReplyError(res, caller.status());
      ServiceMetrics::JobFilter visible;
      if (!caller->admin) {
        visible = [this, tenant = caller->tenant](const std::string& id) {
          absl::StatusOr<JobView> job = source_->GetJob(id);
          return job.ok() && job->owner == tenant;
        };
      }
      res.set_content(metrics_->Scrape(visible), "text/plain; version=0.0.4; charset=utf-8");
    });
    server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
      ServeAsset("/index.html", res);
    });
    server_->Get(R"(/static/([A-Za-z0-9_.-]+))",
                 [](const httplib::Request& req, httplib::Response& res) {
                   ServeAsset(absl::StrCat("/", req.matches[1].str()), res);
                 });
  }

  // The jobs' JSON and event streams; another tenant's job is NOT_FOUND (VisibleJob).
  void JobRoutes() {
    server_->Get("/api/jobs", [this](const httplib::Request& req, httplib::Response& res) {
      absl::StatusOr<auth::Caller> caller = CallerOf(req);
      if (!caller.ok()) return ReplyError(res, caller.status());
      absl::StatusOr<std::vector<JobView>> jobs = source_->ListJobs();
      if (!jobs.ok()) return ReplyError(res, jobs.status());
      nlohmann::json list = nlohmann::json::array();
      for (const JobView& job : *jobs) {
        if (caller->CanSee(job.owner)) list.push_back(JobSummaryToJson(job));
      }
      ReplyJson(res, {{"jobs", list}});
    });
    server_->Get(R"(/api/jobs/([^/]+))",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   absl::StatusOr<JobView> job = VisibleJob(req, req.matches[1].str());
                   if (!job.ok()) return ReplyError(res, job.status());
                   ReplyJson(res, JobDetailToJson(*job));
                 });
    server_->Get(R"(/api/jobs/([^/]+)/events)", [this](const httplib::Request& req,
                                                       httplib::Response& res) {
      const std::string id = req.matches[1].str();
      if (absl::Status visible = VisibleJob(req, id).status(); !visible.ok()) {
        return ReplyError(res, visible);
      }
      absl::StatusOr<int64_t> after = IntParam(req, "after", 0, 0, INT64_MAX);
      if (!after.ok()) return ReplyError(res, after.status());
      absl::StatusOr<int64_t> limit = IntParam(req, "limit", kDefaultEventLimit, 1, kMaxEventLimit);
      if (!limit.ok()) return ReplyError(res, limit.status());
      absl::StatusOr<std::vector<JobEventView>> events =
          source_->ListEvents(id, *after, static_cast<int>(*limit));
      if (!events.ok()) return ReplyError(res, events.status());
      ReplyJson(res, EventsToJson(id, *after, *events));
    });
    server_->Get(
        R"(/api/jobs/([^/]+)/stream)",
        [this](const httplib::Request& req, httplib::Response& res) { StreamEvents(req, res); });
  }

  // The sweeps (sweep_view.h), limited to the jobs the caller may see.
  void SweepRoutes() {
    server_->Get("/api/sweeps", [this](const httplib::Request& req, httplib::Response& res) {
      absl::StatusOr<auth::Caller> caller = CallerOf(req);
      if (!caller.ok()) return ReplyError(res, caller.status());
      absl::StatusOr<nlohmann::json> sweeps = SweepsToJson(*source_, VisibleTo(*caller));
      if (!sweeps.ok()) return ReplyError(res, sweeps.status());
      ReplyJson(res, *sweeps);
    });
    server_->Get(
        R"(/api/sweeps/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
          absl::StatusOr<auth::Caller> caller = CallerOf(req);
          if (!caller.ok()) return ReplyError(res, caller.status());
          const std::string metric = req.has_param("metric") ? req.get_param_value("metric") : "";
          absl::StatusOr<nlohmann::json> sweep =
              SweepToJson(*source_, req.matches[1].str(), metric, VisibleTo(*caller));
          if (!sweep.ok()) return ReplyError(res, sweep.status());
          ReplyJson(res, *sweep);
        });
  }

  static void ServeAsset(const std::string& path, httplib::Response& res) {
    const DashboardAsset* asset = FindDashboardAsset(path);
    if (asset == nullptr) {
      return ReplyError(res, absl::NotFoundError(absl::StrCat("no dashboard file ", path)));
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_content(reinterpret_cast<const char*>(asset->data), asset->size, asset->content_type);
  }

  // Server-sent events (event_streams.h), after `after` or the Last-Event-ID header.
  void StreamEvents(const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    if (absl::Status visible = VisibleJob(req, id).status(); !visible.ok()) {
      return ReplyError(res, visible);
    }
    int64_t after_default = 0;
    if (req.has_header("Last-Event-ID")) {
      absl::SimpleAtoi(req.get_header_value("Last-Event-ID"), &after_default);
    }
    absl::StatusOr<int64_t> after = IntParam(req, "after", after_default, 0, INT64_MAX);
    if (!after.ok()) return ReplyError(res, after.status());
    absl::StatusOr<std::vector<JobEventView>> first = source_->ListEvents(id, *after, 1);
    if (!first.ok()) return ReplyError(res, first.status());
    streams_.Open(id, *after, res);
  }

  // Constant after construction.
  const HttpServerOptions options_;
  JobsSource* const source_;
  ServiceMetrics* const metrics_;

  const std::unique_ptr<httplib::Server> server_;
  EventStreams streams_;
  std::thread thread_;
  int port_ = -1;  // set by Start() before any reader runs

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() = default;

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              JobsSource* source,
                                                              ServiceMetrics* metrics) {
  auto impl = std::make_unique<Impl>(options, source, metrics);
  absl::Status started = impl->Start();
  if (!started.ok()) return started;
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port(); }
std::string HttpServer::address() const { return impl_->address(); }
void HttpServer::Shutdown() { impl_->Shutdown(); }

}  // namespace attune::http
