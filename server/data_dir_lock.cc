#include "server/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace attune {
namespace {

// The pid written into the lock file at `fd`, "unknown" when it is empty or unreadable.
std::string LockHolder(int fd) {
  char text[32] = {};
  const ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
  const absl::string_view pid =
      absl::StripAsciiWhitespace(absl::string_view(text, n > 0 ? static_cast<size_t>(n) : 0));
  return pid.empty() ? "unknown" : std::string(pid);
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& data_dir) {
  const std::string path = data_dir + "/attune.lock";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--data-dir: cannot open ", path, ": ", std::strerror(errno)));
  }
  int locked = 0;
  do {
    locked = flock(fd, LOCK_EX | LOCK_NB);
  } while (locked != 0 && errno == EINTR);
  if (locked != 0) {
    const int error = errno;
    const std::string holder = LockHolder(fd);
    close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("--data-dir: ", data_dir, " is in use by another attuned (pid ", holder,
                       ", lock file ", path, "); stop it first or choose another --data-dir"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("--data-dir: cannot lock ", path, ": ", std::strerror(error)));
  }
  // The pid is only for that message: a failed write (a full disk) does not stop the server.
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    std::cerr << "attuned: cannot write the pid into " << path << ": " << std::strerror(errno)
              << std::endl;
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

}  // namespace attune
