// The tokens file of `attuned --auth-tokens FILE`: who may call the server, as which tenant, and
// what each tenant may use.
//
// One token per line, fields separated by spaces; `#` starts a comment, blank lines are skipped:
//
//   SHA256 TENANT [admin] [roots=DIR[,DIR]] [max_jobs=N] [max_gpus=N] [max_dataset_bytes=N]
//
// SHA256 is the lowercase hex SHA-256 of the token (64 characters), so the file can be read
// without revealing tokens (`attune token create` prints a new token and its line). TENANT is
// 1..64 of [A-Za-z0-9_.-]. `admin` lets that token see and act on every tenant's jobs. The
// settings after it belong to the tenant, not the token: they may be given on any of the
// tenant's lines, and a setting given twice with different values is an error.
//   roots=              directories this tenant's job files must lie in (resolved after
//                       symlinks at CreateJob); they must also lie inside the server's
//                       --data-roots. Absent = the server's roots.
//   max_jobs=           jobs running at once; more are accepted and wait QUEUED (the reason
//                       in an event).
//   max_gpus=           GPUs the tenant's running jobs hold at once; more wait QUEUED.
//   max_dataset_bytes=  train + validation file bytes of one job; a bigger job is refused with
//                       RESOURCE_EXHAUSTED.
// Absent limits (or 0) mean no limit.
//
// Pure parsing: no file system access, thread-safe.
#ifndef ATTUNE_SERVER_AUTH_TOKENS_FILE_H_
#define ATTUNE_SERVER_AUTH_TOKENS_FILE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace attune::auth {

// What a tenant may use; 0 = no limit.
struct TenantQuota {
  int64_t max_jobs = 0;           // running jobs at once (more wait QUEUED)
  int64_t max_gpus = 0;           // GPUs held by running jobs at once
  int64_t max_dataset_bytes = 0;  // train + validation bytes of one job
  bool operator==(const TenantQuota& o) const {
    return max_jobs == o.max_jobs && max_gpus == o.max_gpus &&
           max_dataset_bytes == o.max_dataset_bytes;
  }
};

struct TenantSettings {
  std::vector<std::string> data_roots;  // empty = the server's roots
  TenantQuota quota;
};

struct TokenEntry {
  std::string sha256_hex;  // 64 lowercase hex characters
  std::string tenant;
  bool admin = false;
};

struct TokenTable {
  std::vector<TokenEntry> tokens;                 // in file order
  std::map<std::string, TenantSettings> tenants;  // every tenant named by a token
};

// Parses the whole file. INVALID_ARGUMENT naming the line and what is allowed, e.g.
// "line 3: 'abc' is not a SHA-256 (64 lowercase hex characters)" or
// "line 4: max_jobs: 'x' is not an integer >= 0".
absl::StatusOr<TokenTable> ParseTokensFile(absl::string_view text);

}  // namespace attune::auth

#endif  // ATTUNE_SERVER_AUTH_TOKENS_FILE_H_
