#include "common/os_error.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace attune {

absl::Status OsError(const std::string& what, int error) {
  const std::string message = error == 0 ? what : absl::StrCat(what, ": ", std::strerror(error));
  switch (error) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace attune
