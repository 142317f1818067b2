#include "common/remove_tree.h"

#include <ftw.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace attune {
namespace {

// nftw's callback: files, links and (after their contents, FTW_DEPTH) directories.
int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  return std::remove(path) == 0 ? 0 : errno;
}

}  // namespace

bool RemoveTree(const std::string& path, std::string* error) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return true;
    if (error != nullptr) *error = path + ": " + std::strerror(errno);
    return false;
  }
  const int result = nftw(path.c_str(), RemoveEntry, /*nopenfd=*/16, FTW_DEPTH | FTW_PHYS);
  if (result == 0) return true;
  if (error != nullptr) *error = path + ": " + std::strerror(result > 0 ? result : errno);
  return false;
}

}  // namespace attune
