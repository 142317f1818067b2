// The TLS files of attuned (--tls-cert, --tls-key, --tls-client-ca), shared by the gRPC and the
// HTTP listener. Plain paths and PEM text; each listener builds its own credentials from them.
#ifndef ATTUNE_SERVER_AUTH_TLS_FILES_H_
#define ATTUNE_SERVER_AUTH_TLS_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace attune::auth {

struct TlsFiles {
  std::string cert_path;       // PEM certificate chain of the server; "" = plaintext
  std::string key_path;        // PEM private key of that certificate
  std::string client_ca_path;  // PEM CAs that client certificates must chain to; "" = no mTLS

  bool enabled() const { return !cert_path.empty(); }
  bool mutual() const { return !client_ca_path.empty(); }
};

// OK when no file is named, or the certificate and the key are both named and readable (and the
// client CA, if named). INVALID_ARGUMENT naming the flag otherwise, e.g. "--tls-key: required
// with --tls-cert" or "--tls-client-ca: needs --tls-cert and --tls-key".
absl::Status CheckTlsFiles(const TlsFiles& files);

// The whole file at `path`; INVALID_ARGUMENT naming `flag` when it cannot be read.
absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path);

}  // namespace attune::auth

#endif  // ATTUNE_SERVER_AUTH_TLS_FILES_H_
