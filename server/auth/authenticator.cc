#include "server/auth/authenticator.h"

#include <openssl/crypto.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace attune::auth {
namespace {

constexpr absl::string_view kBearer = "bearer ";

absl::StatusOr<TokenTable> ReadTokensFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--auth-tokens: cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  absl::StatusOr<TokenTable> table = ParseTokensFile(text.str());
  if (!table.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-tokens: ", path, ": ", table.status().message()));
  }
  return table;
}

// The host part of `peer` with gRPC's "ipv4:"/"ipv6:" prefix, brackets and port removed.
absl::string_view PeerHost(absl::string_view peer) {
  if (absl::ConsumePrefix(&peer, "ipv4:")) return peer.substr(0, peer.rfind(':'));
  absl::ConsumePrefix(&peer, "ipv6:");
  if (absl::ConsumePrefix(&peer, "[")) return peer.substr(0, peer.find(']'));
  // A bare IPv4 address may carry a port; a bare IPv6 address (two colons or more) does not.
  if (peer.find(':') == peer.rfind(':')) return peer.substr(0, peer.find(':'));
  return peer;
}

}  // namespace

bool IsLoopbackPeer(absl::string_view peer) {
  if (absl::StartsWith(peer, "unix:")) return true;
  absl::string_view host = PeerHost(peer);
  absl::ConsumePrefix(&host, "::ffff:");
  return absl::StartsWith(host, "127.") || host == "::1" || host == "localhost";
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(const std::string& tokens_path,
                                                                     Peers peers) {
  std::unique_ptr<Authenticator> authenticator(new Authenticator(tokens_path, peers));
  RETURN_IF_ERROR(authenticator->Reload());
  return authenticator;
}

absl::Status Authenticator::Reload() {
  if (tokens_path_.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(TokenTable table, ReadTokensFile(tokens_path_));
  absl::MutexLock lock(&mu_);
  table_ = std::move(table);
  return absl::OkStatus();
}

absl::StatusOr<Caller> Authenticator::Authenticate(absl::string_view authorization,
                                                   absl::string_view peer) const {
  if (!requires_tokens()) {
    if (peers_ == Peers::kLoopbackOnly && !IsLoopbackPeer(peer)) {
      return absl::UnauthenticatedError(absl::StrCat(
          "attuned accepts only loopback clients without --auth-tokens; ", peer, " is not one"));
    }
    return Caller{"", /*admin=*/true, {}};
  }
  if (authorization.empty()) {
    return absl::UnauthenticatedError("no token: send 'authorization: Bearer TOKEN'");
  }
  if (authorization.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kBearer.size()), kBearer)) {
    return absl::UnauthenticatedError("authorization: expected 'Bearer TOKEN'");
  }
  Sha256 digest;
  const absl::string_view token = absl::StripAsciiWhitespace(authorization.substr(kBearer.size()));
  digest.Update(token.data(), token.size());
  ASSIGN_OR_RETURN(std::string hex, digest.HexDigest());
  absl::MutexLock lock(&mu_);
  const TokenEntry* match = nullptr;
  for (const TokenEntry& entry : table_.tokens) {  // every entry, no early exit
    const bool equal = CRYPTO_memcmp(entry.sha256_hex.data(), hex.data(), hex.size()) == 0;
    if (equal) match = &entry;
  }
  if (match == nullptr) return absl::UnauthenticatedError("unknown or revoked token");
  return Caller{match->tenant, match->admin, table_.tenants.at(match->tenant)};
}

TenantQuota Authenticator::QuotaOf(const std::string& tenant) const {
  absl::MutexLock lock(&mu_);
  auto it = table_.tenants.find(tenant);
  return it == table_.tenants.end() ? TenantQuota{} : it->second.quota;
}

}  // namespace attune::auth
