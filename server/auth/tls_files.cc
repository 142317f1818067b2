#include "server/auth/tls_files.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace attune::auth {

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || text.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  }
  return text.str();
}

absl::Status CheckTlsFiles(const TlsFiles& files) {
  if (files.cert_path.empty() && files.key_path.empty()) {
    if (files.mutual()) {
      return absl::InvalidArgumentError("--tls-client-ca: needs --tls-cert and --tls-key");
    }
    return absl::OkStatus();
  }
  if (files.cert_path.empty())
    return absl::InvalidArgumentError("--tls-cert: required with --tls-key");
  if (files.key_path.empty())
    return absl::InvalidArgumentError("--tls-key: required with --tls-cert");
  RETURN_IF_ERROR(ReadPem("--tls-cert", files.cert_path).status());
  RETURN_IF_ERROR(ReadPem("--tls-key", files.key_path).status());
  if (files.mutual()) RETURN_IF_ERROR(ReadPem("--tls-client-ca", files.client_ca_path).status());
  return absl::OkStatus();
}

}  // namespace attune::auth
