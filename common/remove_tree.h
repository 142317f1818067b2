// Removing a directory tree, without std::filesystem::remove_all.
//
// On the GPU machine (Ubuntu 24.04, g++ 13 beside PyTorch's LibTorch) a call to
// std::filesystem::remove_all jumped to a null address: attune-bench crashed at exit
// (2026-11-29), and attuned crashed when it pruned a job's old checkpoints. This walks the tree
// with POSIX nftw(3) and unlinks depth first instead.
#ifndef ATTUNE_COMMON_REMOVE_TREE_H_
#define ATTUNE_COMMON_REMOVE_TREE_H_

#include <string>

namespace attune {

// Removes `path` (a file, a symlink or a directory with everything under it; symlinks are
// removed, never followed). A path that does not exist is not an error. Returns false and sets
// `*error` (when not null) to what failed otherwise.
bool RemoveTree(const std::string& path, std::string* error = nullptr);

}  // namespace attune

#endif  // ATTUNE_COMMON_REMOVE_TREE_H_
