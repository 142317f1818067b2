#include "common/sha256.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace attune {
namespace {

absl::Status AddFile(const std::string& path, Sha256* digest) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int error = errno;
    const std::string message =
        absl::StrCat("sha256: cannot open ", path, ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
  }
  std::vector<char> buffer(1 << 20);
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), file)) > 0)
    digest->Update(buffer.data(), n);
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) {
    return absl::InternalError(
        absl::StrCat("sha256: cannot read ", path, ": ", std::strerror(error)));
  }
  return digest->status();
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
    status_ = absl::InternalError("sha256: OpenSSL could not start a SHA-256 digest");
  }
}

Sha256::~Sha256() = default;

void Sha256::Update(const void* data, size_t size) {
  if (!status_.ok() || size == 0) return;
  if (EVP_DigestUpdate(ctx_.get(), data, size) != 1) {
    status_ = absl::InternalError("sha256: OpenSSL EVP_DigestUpdate failed");
  }
}

absl::StatusOr<std::string> Sha256::HexDigest() {
  if (!status_.ok()) return status_;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), digest, &length) != 1) {
    status_ = absl::InternalError("sha256: OpenSSL EVP_DigestFinal_ex failed");
    return status_;
  }
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) absl::StrAppendFormat(&hex, "%02x", digest[i]);
  return hex;
}

absl::StatusOr<std::string> Sha256File(const std::string& path) { return Sha256Files({path}); }

absl::StatusOr<std::string> Sha256Files(const std::vector<std::string>& paths) {
  Sha256 digest;
  if (!digest.status().ok()) return digest.status();
  for (const std::string& path : paths) {
    absl::Status added = AddFile(path, &digest);
    if (!added.ok()) return added;
  }
  return digest.HexDigest();
}

}  // namespace attune
