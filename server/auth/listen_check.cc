#include "server/auth/listen_check.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/auth/authenticator.h"

namespace attune::auth {

absl::Status CheckExposure(absl::string_view flag, absl::string_view address, Transport transport,
                           Tokens tokens, Exposure exposure) {
  if (IsLoopbackPeer(address) || exposure == Exposure::kAllowInsecure) return absl::OkStatus();
  std::vector<std::string> missing;
  if (transport != Transport::kTls) missing.push_back("--tls-cert/--tls-key");
  if (tokens != Tokens::kRequired) missing.push_back("--auth-tokens");
  if (missing.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      flag, ": ", address,
      " is not a loopback address; serving it needs --tls-cert, --tls-key and --auth-tokens "
      "(missing: ",
      absl::StrJoin(missing, ", "), "), or --insecure"));
}

}  // namespace attune::auth
