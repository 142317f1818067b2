// A Status for a failed operating-system call, with the OS's own words: the one place that
// turns an errno into a status code (a full disk is RESOURCE_EXHAUSTED, a missing file NOT_FOUND,
// anything else INTERNAL). Thread-safe.
#ifndef ATTUNE_COMMON_OS_ERROR_H_
#define ATTUNE_COMMON_OS_ERROR_H_

#include <string>

#include "absl/status/status.h"

namespace attune {

// "<what>: <strerror(error)>" (just `what` when error is 0), with the code chosen by `error`:
// ENOSPC and EDQUOT RESOURCE_EXHAUSTED, ENOENT NOT_FOUND, others INTERNAL.
absl::Status OsError(const std::string& what, int error);

}  // namespace attune

#endif  // ATTUNE_COMMON_OS_ERROR_H_
