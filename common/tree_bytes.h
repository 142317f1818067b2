// How much disk a directory tree's files take: the sum of the sizes of the regular files under
// it, as `du --apparent-size -b` counts them, for a job's artifact directory (Job.artifact_bytes,
// DeleteJob's freed_bytes). Walks the tree with POSIX nftw(3), as RemoveTree does
// (remove_tree.h says why not std::filesystem), without following symbolic links.
#ifndef ATTUNE_COMMON_TREE_BYTES_H_
#define ATTUNE_COMMON_TREE_BYTES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace attune {

// The bytes of the regular files at or under `path` (a file or a directory); symbolic links and
// directories count 0. A path that does not exist has 0 bytes. INTERNAL naming the path and the
// OS error when the tree cannot be read. Thread-safe; costs one stat per entry.
absl::StatusOr<int64_t> TreeBytes(const std::string& path);

}  // namespace attune

#endif  // ATTUNE_COMMON_TREE_BYTES_H_
