#include "client/token_command.h"

#include <openssl/rand.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace attune::client {

absl::StatusOr<std::string> NewToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("token create: OpenSSL's random source failed");
  }
  return absl::StrCat("attune_", absl::BytesToHexString(absl::string_view(
                                     reinterpret_cast<char*>(bytes), sizeof(bytes))));
}

absl::StatusOr<std::string> TokenLine(const std::string& token, const std::string& tenant,
                                      TokenRole role) {
  bool valid = !tenant.empty() && tenant.size() <= 64;
  for (char c : tenant) valid &= absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-';
  if (!valid) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tenant: '", tenant, "' must be 1..64 of [A-Za-z0-9_.-]"));
  }
  Sha256 digest;
  digest.Update(token.data(), token.size());
  ASSIGN_OR_RETURN(std::string hex, digest.HexDigest());
  return absl::StrCat(hex, " ", tenant, role == TokenRole::kAdmin ? " admin" : "");
}

}  // namespace attune::client
