// Who is calling: turns a request's `authorization: Bearer TOKEN` header (gRPC metadata or the
// HTTP header) and its peer address into a Caller (tenant, admin), for the gRPC service and the
// HTTP server alike. No gRPC or HTTP types here.
//
// Two modes, chosen at start:
//   - no tokens (no --auth-tokens): every caller from 127.0.0.0/8, ::1 or a unix socket is the
//     admin of the one tenant "" (what attuned was before tenants); any other peer gets
//     UNAUTHENTICATED, unless the operator chose Peers::kAny (attuned --insecure).
//   - tokens (--auth-tokens FILE, tokens_file.h): the token must be in the file. It is hashed
//     with SHA-256 and the digest compared with every entry in constant time (no early exit, so
//     the answer's timing says nothing about how close a guess was). Reload() re-reads the file
//     (attuned calls it on SIGHUP); a file that does not parse leaves the previous table in use.
//
// Thread safety: every method is thread-safe; the table is swapped whole under mu_.
#ifndef ATTUNE_SERVER_AUTH_AUTHENTICATOR_H_
#define ATTUNE_SERVER_AUTH_AUTHENTICATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/auth/tokens_file.h"

namespace attune::auth {

// The authenticated caller of one request.
struct Caller {
  std::string tenant;  // owner of the jobs it creates; "" without --auth-tokens
  bool admin = false;  // sees and acts on every tenant's jobs
  TenantSettings settings;

  // Whether this caller may see a job owned by `owner`.
  bool CanSee(const std::string& owner) const { return admin || owner == tenant; }
};

// True for 127.0.0.0/8, ::1, ::ffff:127.x and unix sockets, in either gRPC's peer form
// ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:/path") or as a bare address ("127.0.0.1",
// "::1", "localhost"), with or without a port.
bool IsLoopbackPeer(absl::string_view peer);

// Who may call without tokens.
enum class Peers { kLoopbackOnly, kAny };

class Authenticator {
 public:
  // `tokens_path` "" = no tokens, callers as `peers` says. Otherwise reads and parses the file:
  // INVALID_ARGUMENT naming --auth-tokens and the line when it does not parse, NOT_FOUND when
  // it cannot be read.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(const std::string& tokens_path,
                                                               Peers peers = Peers::kLoopbackOnly);

  // Re-reads the tokens file. On error (named as in Create) the previous table stays in use. OK
  // and nothing done in loopback-only mode.
  absl::Status Reload();

  // The caller for a request with this `authorization` header value ("" when absent) from
  // `peer`. UNAUTHENTICATED when tokens are required and the header is missing, malformed
  // ("expected 'Bearer TOKEN'") or names an unknown token; in loopback-only mode when the peer
  // is not loopback.
  absl::StatusOr<Caller> Authenticate(absl::string_view authorization,
                                      absl::string_view peer) const;

  bool requires_tokens() const { return !tokens_path_.empty(); }

  // The quota of `tenant` now (no limits for a tenant the file does not name).
  TenantQuota QuotaOf(const std::string& tenant) const;

 private:
  Authenticator(std::string tokens_path, Peers peers)
      : tokens_path_(std::move(tokens_path)), peers_(peers) {}

  // Constant after construction.
  const std::string tokens_path_;
  const Peers peers_;

  mutable absl::Mutex mu_;
  TokenTable table_ ABSL_GUARDED_BY(mu_);
};

}  // namespace attune::auth

#endif  // ATTUNE_SERVER_AUTH_AUTHENTICATOR_H_
