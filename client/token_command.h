// `attune token create`: makes a new bearer token and the line for attuned's --auth-tokens file
// (server/auth/tokens_file.h), which holds only the token's SHA-256, so the file may be read by
// whoever runs the server without revealing tokens. Needs no server.
#ifndef ATTUNE_CLIENT_TOKEN_COMMAND_H_
#define ATTUNE_CLIENT_TOKEN_COMMAND_H_

#include <string>

#include "absl/status/statusor.h"

namespace attune::client {

enum class TokenRole { kTenant, kAdmin };

// A new token: "attune_" and 64 hex characters of OpenSSL's RAND_bytes (256 bits). INTERNAL
// when the random source fails.
absl::StatusOr<std::string> NewToken();

// The tokens-file line for `token`: "SHA256 TENANT" plus " admin" for kAdmin. INVALID_ARGUMENT
// when `tenant` is not 1..64 of [A-Za-z0-9_.-].
absl::StatusOr<std::string> TokenLine(const std::string& token, const std::string& tenant,
                                      TokenRole role);

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_TOKEN_COMMAND_H_
