// Opening a job's files so that no path, and no symbolic link, leads outside the data roots.
//
// attuned reads only files under its `--data-roots`. Checking a path once, when the job is
// created, is not enough: the engine opens the files later (CheckSpec at CreateJob, and again
// when the job runs), and a file, or a directory on the way to it, can be replaced by a link
// in between. So every file the engine reads for a job (config.json, the safetensors weights or
// shards and their index, tokenizer.json, the JSONL data) is opened here, and the check is made
// when the file is opened:
//
//  1. `ResolveInsideRoots`: the path is resolved (`..` collapsed, links followed, as
//     std::filesystem::weakly_canonical) and the result must lie inside one of the roots (each
//     resolved too). Links that stay inside the roots are fine: a Hugging Face cache snapshot
//     is a directory of links into the cache's blobs.
//  2. `OpenWithoutLinks`: the resolved path is opened one component at a time from "/", each
//     with openat(O_NOFOLLOW). A link that appeared anywhere on the way since step 1 fails the
//     open (ELOOP or ENOTDIR) instead of being followed, so the file opened is the very file at
//     the path that was checked. The last component is opened with O_NONBLOCK (a FIFO cannot
//     block the reader) and must be a regular file (fstat of the descriptor).
//
// Why not realpath + check + an fstat identity check: comparing the opened file's dev/inode
// with a stat of the checked path still races, since the open and the stat both follow a link
// swapped in between. Why not openat2(RESOLVE_BENEATH): it needs Linux 5.6, works from a
// single root, and refuses absolute links that point inside the roots.
//
// Messages name the path and what is wrong, never the file's contents.
//
// Thread-safe: free functions that only read the file system; `ScopedFd` is a move-only owner.
#ifndef ATTUNE_COMMON_CONFINED_FILE_H_
#define ATTUNE_COMMON_CONFINED_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attune {

// An open file descriptor, closed by the destructor. Move-only.
class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ~ScopedFd();
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ScopedFd& operator=(ScopedFd&& other) noexcept;
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }

 private:
  int fd_;
};

// Step 1: the resolved absolute form of `path` when it lies inside one of `roots`, whether or
// not it exists. INVALID_ARGUMENT "<path> is relative; the server needs an absolute path",
// "<path> cannot be resolved: <error>" or "<path> is outside the data roots (<root>, ...)".
// `roots` are resolved here (a root that does not resolve contains nothing); empty `roots`
// means no root restriction, and a relative path is then taken from the current directory (the
// engine's own tests and tools; attuned always passes its roots).
absl::StatusOr<std::string> ResolveInsideRoots(const std::vector<std::string>& roots,
                                               const std::string& path);

// Step 2: opens `resolved_path` (absolute, without "." or ".." components) read-only, walking
// from "/" and following no link. Errors name the path:
//   NOT_FOUND "<path> does not exist";
//   INVALID_ARGUMENT "<path> changed while it was opened: a symbolic link on the way is not
//     followed", "<path> is not a regular file", "<path> cannot be opened: <error>".
absl::StatusOr<ScopedFd> OpenWithoutLinks(const std::string& resolved_path);

// ResolveInsideRoots, then OpenWithoutLinks: a read-only descriptor of the regular file `path`
// names, which lies inside `roots` at the moment it is opened. The errors of both steps.
absl::StatusOr<ScopedFd> OpenInsideRoots(const std::vector<std::string>& roots,
                                         const std::string& path);

// The whole file, read through OpenInsideRoots, when it is at most `max_bytes` long. Its
// errors, or INVALID_ARGUMENT "<path> cannot be read: <error>", or, for a larger file (its size
// from fstat before anything is read, or the bytes read when it grows meanwhile),
// INVALID_ARGUMENT "<path>: <size> bytes; at most <max_bytes> allowed".
absl::StatusOr<std::string> ReadInsideRoots(const std::vector<std::string>& roots,
                                            const std::string& path, int64_t max_bytes);

}  // namespace attune

#endif  // ATTUNE_COMMON_CONFINED_FILE_H_
