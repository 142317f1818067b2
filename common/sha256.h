// SHA-256 digests as lowercase hex, over OpenSSL's EVP interface: the one helper that the
// server (checkpoints, data files, adapter downloads) and the client (download checks) share.
//
// Thread safety: `Sha256` is thread-compatible (one object per thread); the free functions are
// thread-safe.
#ifndef ATTUNE_COMMON_SHA256_H_
#define ATTUNE_COMMON_SHA256_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct evp_md_ctx_st;

namespace attune {

// An incremental digest. Every call after a failed one keeps failing with the first error.
class Sha256 {
 public:
  // Check status() once before use: INTERNAL when OpenSSL could not set up the digest.
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Adds `size` bytes at `data`.
  void Update(const void* data, size_t size);
  // The digest of everything added, as 64 hex characters; INTERNAL if OpenSSL failed at any
  // point. Ends the digest: call at most once.
  absl::StatusOr<std::string> HexDigest();
  const absl::Status& status() const { return status_; }

 private:
  std::unique_ptr<evp_md_ctx_st, void (*)(evp_md_ctx_st*)> ctx_;
  absl::Status status_;
};

// The digest of a file's bytes. NOT_FOUND when the file does not exist, INTERNAL when it cannot
// be opened or read (the message names the path and the OS error), or when OpenSSL fails.
absl::StatusOr<std::string> Sha256File(const std::string& path);

// The digest of several files' bytes one after another, as if concatenated. Errors as
// Sha256File, for the first file that fails.
absl::StatusOr<std::string> Sha256Files(const std::vector<std::string>& paths);

}  // namespace attune

#endif  // ATTUNE_COMMON_SHA256_H_
