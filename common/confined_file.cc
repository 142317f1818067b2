#include "common/confined_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace attune {
namespace {

namespace fs = std::filesystem;

// True when `path` equals `root` or lies below it (both resolved, absolute).
bool IsInside(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

// The error for an openat of a component of `path` that failed with `err`.
absl::Status OpenError(const std::string& path, int err) {
  if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
  if (err == ELOOP || err == ENOTDIR) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " changed while it was opened: a symbolic link on the way is not followed"));
  }
  return absl::InvalidArgumentError(absl::StrCat(path, " cannot be opened: ", std::strerror(err)));
}

// Opens the last component `name` below `dir`: no link, no blocking, a regular file only.
absl::StatusOr<ScopedFd> OpenLastComponent(const ScopedFd& dir, const std::string& name,
                                           const std::string& path) {
  ScopedFd file(
      openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (file.get() < 0) return OpenError(path, errno);
  struct stat st;
  if (fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  const int flags = fcntl(file.get(), F_GETFL);
  if (flags < 0 || fcntl(file.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return OpenError(path, errno);
  }
  return file;
}

}  // namespace

ScopedFd::~ScopedFd() {
  if (fd_ >= 0) ::close(fd_);
}

ScopedFd& ScopedFd::operator=(ScopedFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

absl::StatusOr<std::string> ResolveInsideRoots(const std::vector<std::string>& roots,
                                               const std::string& path) {
  if (!roots.empty() && !fs::path(path).is_absolute()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is relative; the server needs an absolute path"));
  }
  std::error_code ec;
  const fs::path resolved = fs::weakly_canonical(fs::absolute(fs::path(path)), ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(path, " cannot be resolved: ", ec.message()));
  }
  if (roots.empty()) return resolved.string();
  std::vector<std::string> resolved_roots;
  for (const std::string& root : roots) {
    const fs::path canonical = fs::canonical(fs::path(root), ec);
    if (ec) continue;
    if (IsInside(resolved, canonical)) return resolved.string();
    resolved_roots.push_back(canonical.string());
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, " is outside the data roots (", absl::StrJoin(resolved_roots, ", "), ")"));
}

absl::StatusOr<ScopedFd> OpenWithoutLinks(const std::string& resolved_path) {
  std::vector<std::string> parts = absl::StrSplit(resolved_path, '/', absl::SkipEmpty());
  if (resolved_path.empty() || resolved_path[0] != '/' || parts.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(resolved_path, " is not a regular file"));
  }
  for (const std::string& part : parts) {
    if (part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(resolved_path, " is not a resolved path: it holds '.' or '..'"));
    }
  }
  // Directories are opened as O_PATH: that needs search permission only, as a path lookup does.
  ScopedFd dir(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) return OpenError(resolved_path, errno);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    ScopedFd next(
        openat(dir.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0) return OpenError(resolved_path, errno);
    dir = std::move(next);
  }
  return OpenLastComponent(dir, parts.back(), resolved_path);
}

absl::StatusOr<ScopedFd> OpenInsideRoots(const std::vector<std::string>& roots,
                                         const std::string& path) {
  absl::StatusOr<std::string> resolved = ResolveInsideRoots(roots, path);
  if (!resolved.ok()) return resolved.status();
  absl::StatusOr<ScopedFd> file = OpenWithoutLinks(*resolved);
  if (file.ok() || *resolved == path) return file;
  // Name the path as the job gave it, not only as resolved.
  const std::string message(file.status().message());
  return absl::Status(file.status().code(), absl::StrCat(path, message.substr(resolved->size())));
}

namespace {

absl::Status TooLarge(const std::string& path, int64_t size, int64_t max_bytes) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": ", size, " bytes; at most ", max_bytes, " allowed"));
}

}  // namespace

absl::StatusOr<std::string> ReadInsideRoots(const std::vector<std::string>& roots,
                                            const std::string& path, int64_t max_bytes) {
  absl::StatusOr<ScopedFd> file = OpenInsideRoots(roots, path);
  if (!file.ok()) return file.status();
  struct stat info {};
  if (::fstat(file->get(), &info) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " cannot be read: ", std::strerror(errno)));
  }
  if (info.st_size > max_bytes) return TooLarge(path, info.st_size, max_bytes);
  std::string bytes;
  bytes.reserve(static_cast<size_t>(info.st_size));
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(file->get(), buffer, sizeof(buffer));
    if (n == 0) return bytes;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " cannot be read: ", std::strerror(errno)));
    }
    if (static_cast<int64_t>(bytes.size()) + n > max_bytes) {
      return TooLarge(path, static_cast<int64_t>(bytes.size()) + n, max_bytes);
    }
    bytes.append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace attune
