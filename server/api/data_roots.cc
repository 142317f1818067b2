#include "server/api/data_roots.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/confined_file.h"

namespace attune::api {

namespace fs = std::filesystem;

absl::StatusOr<DataRoots> DataRoots::Create(const std::vector<std::string>& roots) {
  if (roots.empty())
    return absl::InvalidArgumentError("--data-roots: at least one directory required");
  std::vector<std::string> resolved;
  for (const std::string& root : roots) {
    std::error_code ec;
    fs::path canonical = fs::canonical(fs::absolute(root), ec);
    if (ec || !fs::is_directory(canonical)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--data-roots: ", root, " is not an existing directory"));
    }
    // The data dir may be named again in --data-roots: list each root once.
    if (std::find(resolved.begin(), resolved.end(), canonical.string()) == resolved.end()) {
      resolved.push_back(canonical.string());
    }
  }
  return DataRoots(std::move(resolved));
}

absl::StatusOr<std::string> DataRoots::Resolve(const std::string& field, const std::string& path,
                                               PathKind kind) const {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  absl::StatusOr<std::string> inside = ResolveInsideRoots(roots_, path);
  if (!inside.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", inside.status().message()));
  }
  const fs::path resolved(*inside);
  std::error_code ec;
  fs::file_status status = fs::status(resolved, ec);
  if (ec || !fs::exists(status)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", path, " does not exist"));
  }
  if (kind == PathKind::kDirectory && !fs::is_directory(status)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", path, " is not a directory"));
  }
  if (kind == PathKind::kFile && !fs::is_regular_file(status)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", path, " is not a regular file"));
  }
  return resolved.string();
}

}  // namespace attune::api
