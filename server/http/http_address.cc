// ParseHttpAddress (declared in http_server.h): the --http flag's text into listener options.
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/http/http_server.h"

namespace attune::http {

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

}  // namespace attune::http
