#ifndef ATTUNE_SERVER_DATA_DIR_LOCK_H_
#define ATTUNE_SERVER_DATA_DIR_LOCK_H_

#include <unistd.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace attune {

// DataDirLock: one attuned per data directory. An exclusive flock on <data_dir>/attune.lock, held
// for the life of the process. The file holds the holder's pid, for the message a second server
// prints. The OS drops the lock when the process exits, however it exits (kill -9 too), so a
// restart never has to clean up. The lock file itself is never removed.
class DataDirLock {
 public:
  // FAILED_PRECONDITION naming the holder's pid when another process holds the lock;
  // INVALID_ARGUMENT naming --data-dir when the lock file cannot be opened or locked.
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(const std::string& data_dir);
  ~DataDirLock() { close(fd_); }  // releases the lock
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  const int fd_;
};

}  // namespace attune

#endif  // ATTUNE_SERVER_DATA_DIR_LOCK_H_
