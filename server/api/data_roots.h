// The directories job files may come from, and the check that a path stays inside them.
//
// A job names files on the server (model directory, training and validation data). The server
// only reads files under its configured `--data-roots`, so a client cannot make it read
// /etc/passwd or another tenant's data. Paths are resolved before the check: `..` is collapsed
// and symbolic links are followed (std::filesystem::weakly_canonical), so a link inside a root
// that points outside it is refused too (common/confined_file.h). This is the check at
// CreateJob; the engine opens each file through confined_file.h with the same roots, so a file
// that becomes a link to the outside later is refused when it is opened.
#ifndef ATTUNE_SERVER_API_DATA_ROOTS_H_
#define ATTUNE_SERVER_API_DATA_ROOTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace attune::api {

enum class PathKind {
  kFile,       // a regular file (after following links)
  kDirectory,  // a directory
};

class DataRoots {
 public:
  // Resolves each root (it must exist and be a directory). INVALID_ARGUMENT naming
  // "--data-roots" and the root otherwise, or when `roots` is empty.
  static absl::StatusOr<DataRoots> Create(const std::vector<std::string>& roots);

  // Returns the resolved absolute path when `path` is absolute, lies inside one of the roots
  // after resolution, and exists as `kind`. Otherwise INVALID_ARGUMENT naming `field`, e.g.
  // "train: /etc/passwd is outside the data roots (/data, /home/me)" or
  // "model: /data/m does not exist". Thread-safe (reads the file system only).
  absl::StatusOr<std::string> Resolve(const std::string& field, const std::string& path,
                                      PathKind kind) const;

  // The resolved roots, in the order given.
  const std::vector<std::string>& roots() const { return roots_; }

 private:
  explicit DataRoots(std::vector<std::string> roots) : roots_(std::move(roots)) {}

  std::vector<std::string> roots_;  // constant after construction
};

}  // namespace attune::api

#endif  // ATTUNE_SERVER_API_DATA_ROOTS_H_
