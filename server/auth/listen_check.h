// The start-up rule for exposed listeners: attuned serves a non-loopback address only with TLS
// and tokens, unless the operator says --insecure (e.g. inside a container whose port only a
// trusted proxy reaches). Checked in main() for --listen and --http before anything binds.
#ifndef ATTUNE_SERVER_AUTH_LISTEN_CHECK_H_
#define ATTUNE_SERVER_AUTH_LISTEN_CHECK_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace attune::auth {

enum class Transport { kPlaintext, kTls };
enum class Tokens { kOff, kRequired };
enum class Exposure { kRefuseInsecure, kAllowInsecure };  // the latter = --insecure

// OK when `address` (HOST:PORT, as given to `flag`) is loopback, or TLS and tokens are both
// on, or `exposure` allows it. Otherwise INVALID_ARGUMENT, e.g. "--listen: 0.0.0.0:50051 is not
// a loopback address; serving it needs --tls-cert, --tls-key and --auth-tokens (missing:
// --tls-cert/--tls-key), or --insecure".
absl::Status CheckExposure(absl::string_view flag, absl::string_view address, Transport transport,
                           Tokens tokens, Exposure exposure);

}  // namespace attune::auth

#endif  // ATTUNE_SERVER_AUTH_LISTEN_CHECK_H_
