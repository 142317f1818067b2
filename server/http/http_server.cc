#include "server/http/http_server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/http/dashboard_assets.h"
#include "server/http/json_views.h"

namespace attune::http {
namespace {

constexpr int kDefaultEventLimit = 1000;
constexpr int kMaxEventLimit = 10000;
constexpr auto kStreamPollInterval = std::chrono::milliseconds(250);
constexpr auto kStreamHeartbeat = std::chrono::seconds(15);

int HttpCode(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return 404;
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
  ReplyJson(res, {{"error", std::string(status.message())}}, HttpCode(status));
}

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
      : options_(options), source_(source), metrics_(metrics) {}

  ~Impl() { Shutdown(); }

  absl::Status Start() {
    const int threads = options_.threads > 0 ? options_.threads : 1;
    server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    // httplib's default also sets SO_REUSEPORT, which would let a second server share a busy
    // port silently; SO_REUSEADDR alone allows quick restarts and still fails on a busy port.
    server_.set_socket_options([](int sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    Routes();
    if (options_.port == 0) {
      port_ = server_.bind_to_any_port(options_.host);
    } else {
      port_ = server_.bind_to_port(options_.host, options_.port) ? options_.port : -1;
    }
    if (port_ <= 0) {
      return absl::UnavailableError(
          absl::StrCat("--http: cannot bind ", options_.host, ":", options_.port));
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // httplib's stop() does nothing until the accept loop runs; wait for it so that a Shutdown
    // right after Start cannot be lost.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return absl::OkStatus();
  }

  void Shutdown() {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  int port() const { return port_; }
  std::string address() const {
    const bool v6 = options_.host.find(':') != std::string::npos;
    return v6 ? absl::StrCat("[", options_.host, "]:", port_)
              : absl::StrCat(options_.host, ":", port_);
  }

 private:
  void Routes() {
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_->Scrape(), "text/plain; version=0.0.4; charset=utf-8");
    });
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    server_.Get("/", [](const httplib::Request&, httplib::Response& res) {
      ServeAsset("/index.html", res);
    });
    server_.Get(R"(/static/([A-Za-z0-9_.-]+))",
                [](const httplib::Request& req, httplib::Response& res) {
                  ServeAsset(absl::StrCat("/", req.matches[1].str()), res);
                });
    server_.Get("/api/jobs", [this](const httplib::Request&, httplib::Response& res) {
      absl::StatusOr<std::vector<JobView>> jobs = source_->ListJobs();
      if (!jobs.ok()) return ReplyError(res, jobs.status());
      nlohmann::json list = nlohmann::json::array();
      for (const JobView& job : *jobs) list.push_back(JobSummaryToJson(job));
      ReplyJson(res, {{"jobs", list}});
    });
    server_.Get(R"(/api/jobs/([^/]+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  absl::StatusOr<JobView> job = source_->GetJob(req.matches[1].str());
                  if (!job.ok()) return ReplyError(res, job.status());
                  ReplyJson(res, JobDetailToJson(*job));
                });
    server_.Get(R"(/api/jobs/([^/]+)/events)", [this](const httplib::Request& req,
                                                      httplib::Response& res) {
      const std::string id = req.matches[1].str();
      absl::StatusOr<int64_t> after = IntParam(req, "after", 0, 0, INT64_MAX);
      if (!after.ok()) return ReplyError(res, after.status());
      absl::StatusOr<int64_t> limit = IntParam(req, "limit", kDefaultEventLimit, 1, kMaxEventLimit);
      if (!limit.ok()) return ReplyError(res, limit.status());
      absl::StatusOr<std::vector<JobEventView>> events =
          source_->ListEvents(id, *after, static_cast<int>(*limit));
      if (!events.ok()) return ReplyError(res, events.status());
      ReplyJson(res, EventsToJson(id, *after, *events));
    });
    server_.Get(
        R"(/api/jobs/([^/]+)/stream)",
        [this](const httplib::Request& req, httplib::Response& res) { StreamEvents(req, res); });
  }

  static void ServeAsset(const std::string& path, httplib::Response& res) {
    const DashboardAsset* asset = FindDashboardAsset(path);
    if (asset == nullptr) {
      return ReplyError(res, absl::NotFoundError(absl::StrCat("no dashboard file ", path)));
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_content(reinterpret_cast<const char*>(asset->data), asset->size, asset->content_type);
  }

  // Server-sent events: polls the source every kStreamPollInterval and writes what is new.
  void StreamEvents(const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    int64_t after_default = 0;
    if (req.has_header("Last-Event-ID")) {
      absl::SimpleAtoi(req.get_header_value("Last-Event-ID"), &after_default);
    }
    absl::StatusOr<int64_t> after = IntParam(req, "after", after_default, 0, INT64_MAX);
    if (!after.ok()) return ReplyError(res, after.status());
    absl::StatusOr<std::vector<JobEventView>> first = source_->ListEvents(id, *after, 1);
    if (!first.ok()) return ReplyError(res, first.status());

    auto cursor = std::make_shared<int64_t>(*after);
    auto last_write =
        std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    res.set_header("Cache-Control", "no-store");
    res.set_chunked_content_provider(
        "text/event-stream", [this, id, cursor, last_write](size_t, httplib::DataSink& sink) {
          absl::StatusOr<std::vector<JobEventView>> events =
              source_->ListEvents(id, *cursor, kDefaultEventLimit);
          if (!events.ok()) return false;
          std::string out;
          for (const JobEventView& event : *events) {
            absl::StrAppend(&out, "id: ", event.sequence, "\nevent: ", event.type,
                            "\ndata: ", EventToJson(event).dump(), "\n\n");
            *cursor = event.sequence;
          }
          const auto now = std::chrono::steady_clock::now();
          if (out.empty() && now - *last_write > kStreamHeartbeat) out = ": keepalive\n\n";
          if (!out.empty()) {
            if (!sink.write(out.data(), out.size())) return false;
            *last_write = now;
          }
          absl::MutexLock lock(&mu_);
          if (mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                                   absl::FromChrono(kStreamPollInterval))) {
            sink.done();
          }
          return true;
        });
  }

  // Constant after construction.
  const HttpServerOptions options_;
  JobsSource* const source_;
  ServiceMetrics* const metrics_;

  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;  // set by Start() before any reader runs

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

absl::StatusOr<HttpServerOptions> ParseHttpAddress(const std::string& address) {
  const auto bad = [&address](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--http: '", address, "' ", why, "; expected HOST:PORT such as 127.0.0.1:9090, ",
        "0.0.0.0:9090, [::1]:9090 or :9090, with PORT in 0..65535"));
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return bad("has no port");
  HttpServerOptions options;
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return bad("has an IPv6 host without brackets");
  }
  options.host = host.empty() ? "0.0.0.0" : host;
  int port = -1;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return bad("has no valid port");
  }
  options.port = port;
  return options;
}

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
