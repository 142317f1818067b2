#include "common/tree_bytes.h"

#include <ftw.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace attune {
namespace {

// nftw's callback has no user argument; each walk's total lives in its thread.
thread_local int64_t walk_bytes = 0;

int AddEntry(const char*, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_F && S_ISREG(st->st_mode)) walk_bytes += st->st_size;
  return 0;
}

}  // namespace

absl::StatusOr<int64_t> TreeBytes(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return 0;
    return absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  walk_bytes = 0;
  if (nftw(path.c_str(), AddEntry, /*nopenfd=*/16, FTW_PHYS) != 0) {
    return absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  return walk_bytes;
}

}  // namespace attune
