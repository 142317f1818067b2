#include "server/api/data_roots.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace attune::api {
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

}  // namespace

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
    resolved.push_back(canonical.string());
  }
  return DataRoots(std::move(resolved));
}

absl::StatusOr<std::string> DataRoots::Resolve(const std::string& field, const std::string& path,
                                               PathKind kind) const {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (!fs::path(path).is_absolute()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", path, " is relative; the server needs an absolute path"));
  }
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(fs::path(path), ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", path, " cannot be resolved: ", ec.message()));
  }
  bool inside = false;
  for (const std::string& root : roots_) inside = inside || IsInside(resolved, fs::path(root));
  if (!inside) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", path, " is outside the data roots (", absl::StrJoin(roots_, ", "), ")"));
  }
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
