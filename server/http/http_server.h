// The HTTP listener of `attuned --http`: Prometheus /metrics, the web dashboard and the JSON
// endpoints the dashboard polls.
//
// Endpoints (all GET):
//   /metrics                         Prometheus text format (ServiceMetrics::Scrape)
//   /                                the dashboard page; /static/<file> its scripts and styles,
//                                    embedded in the binary at build time
//   /api/jobs                        {"jobs": [summary, ...]}, newest first
//   /api/jobs/<id>                   the job's detail: spec, targets and ratios, adapter size
//   /api/jobs/<id>/events?after=N    {"events": [...], "nextAfter": M}: events with sequence > N
//                                    (at most `limit`, default 1000), for polling
//   /api/jobs/<id>/stream?after=N    the same events as server-sent events (text/event-stream,
//                                    `id:` = sequence), ending when the client goes away
//   /healthz                         "ok"
// Errors are JSON {"error": message} with 404 for unknown jobs and 400 for bad parameters.
//
// cpp-httplib (Debian's libcpp-httplib) serves the requests on its own thread pool; httplib's
// headers stay inside http_server.cc.
#ifndef ATTUNE_SERVER_HTTP_HTTP_SERVER_H_
#define ATTUNE_SERVER_HTTP_HTTP_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/http/jobs_source.h"
#include "server/http/service_metrics.h"

namespace attune::http {

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // address to bind; "0.0.0.0" for every interface
  int port = 0;                    // 0 picks a free port; see HttpServer::port()
  int threads = 32;                // request threads; each open event stream holds one
};

// Parses "HOST:PORT" (e.g. "127.0.0.1:9090", "0.0.0.0:0", "[::1]:9090", ":9090" = every
// interface) into options with default thread count. Returns INVALID_ARGUMENT naming `--http`
// and the expected form when the text does not parse or the port is outside 0..65535.
absl::StatusOr<HttpServerOptions> ParseHttpAddress(const std::string& address);

class HttpServer {
 public:
  // Binds `options.host:options.port` and starts serving on background threads. `source` and
  // `metrics` are not owned and must outlive the server. Returns UNAVAILABLE when the address
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           JobsSource* source,
                                                           ServiceMetrics* metrics);

  // Stops listening, ends open event streams and joins the threads.
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port actually bound (useful with port 0). Thread-safe.
  int port() const;
  // "HOST:PORT" as bound, for the `attuned http on HOST:PORT` line. Thread-safe.
  std::string address() const;

  // Stops the server; idempotent. Thread-safe.
  void Shutdown();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace attune::http

#endif  // ATTUNE_SERVER_HTTP_HTTP_SERVER_H_
