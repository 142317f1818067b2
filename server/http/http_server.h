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
//                                    `id:` = sequence); see "Event streams" below
//   /api/sweeps                      {"sweeps": [{"id", "jobs", "states"}]}, newest first
//   /api/sweeps/<id>?metric=M        the sweep's comparison table (as `attune compare --output
//                                    json`) and its jobs' loss curves (sweep_view.h)
//   /healthz                         "ok"
// Access: with an Authenticator that requires tokens, every endpoint but /healthz needs
// `Authorization: Bearer TOKEN` (401 with `WWW-Authenticate: Bearer` otherwise); without one
// only loopback clients are served. A tenant sees only its own jobs in /api/jobs, gets 404 for
// another tenant's (as for an unknown id), and /metrics leaves out other tenants' per-job
// series; an admin sees everything. With TLS files the listener speaks only HTTPS (and with a
// client CA requires a client certificate).
// Errors are JSON {"error": message} with 401 for a missing or bad token, 404 for unknown jobs and
// sweeps, 400 for bad parameters (an unknown metric included) and 503 (with `Retry-After: 1`, in
// seconds) for a stream over the limit.
//
// Event streams: at most `max_streams` are open at once; one more is answered 503 and its
// connection closed. A stream ends, and its connection closes, once the job's terminal event
// (SUCCEEDED, FAILED, CANCELLED) has been sent, at once after the backlog for a job that is
// already over; when the client goes away (noticed within kStreamPollInterval, 250 ms); when
// the client stops reading and a write cannot go out for the write timeout (5 s); and on
// Shutdown. A quiet stream gets a `: keepalive` comment every 15 s.
//
// cpp-httplib (Debian's libcpp-httplib) serves the requests on its own thread pool, one thread
// per connection for as long as the connection is open; httplib's headers stay inside
// http_server.cc.
#ifndef ATTUNE_SERVER_HTTP_HTTP_SERVER_H_
#define ATTUNE_SERVER_HTTP_HTTP_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/auth/authenticator.h"
#include "server/auth/tls_files.h"
#include "server/http/jobs_source.h"
#include "server/http/service_metrics.h"

namespace attune::http {

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // address to bind; "0.0.0.0" for every interface
  int port = 0;                    // 0 picks a free port; see HttpServer::port()
  // Request threads. Each open event stream holds one; the threads beyond max_streams stay
  // free for /healthz, /metrics and the JSON endpoints however many streams are asked for.
  int threads = 32;
  // Event streams open at once, 1..threads-1; one more is answered 503 with Retry-After.
  int max_streams = 24;
  // Who may read what; not owned, must outlive the server. nullptr = everyone sees everything
  // (the unit tests).
  const auth::Authenticator* authenticator = nullptr;
  // HTTPS when enabled (server/auth/tls_files.h); plain HTTP otherwise.
  auth::TlsFiles tls;
};

// Parses "HOST:PORT" (e.g. "127.0.0.1:9090", "0.0.0.0:0", "[::1]:9090", ":9090" = every
// interface) into options with default thread count. Returns INVALID_ARGUMENT naming `--http`
// and the expected form when the text does not parse or the port is outside 0..65535.
absl::StatusOr<HttpServerOptions> ParseHttpAddress(const std::string& address);

class HttpServer {
 public:
  // Binds `options.host:options.port` and starts serving on background threads. `source` and
  // `metrics` are not owned and must outlive the server. Returns UNAVAILABLE when the address
  // cannot be bound, INVALID_ARGUMENT naming max_streams when it is not in 1..threads-1 or
  // naming --tls-cert when the TLS files do not make a working server.
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
