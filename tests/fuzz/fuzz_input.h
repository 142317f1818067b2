// Helpers for the fuzz targets: the input bytes as an in-memory file (memfd), for the readers
// that take a path or a descriptor. Each fuzz target defines LLVMFuzzerTestOneInput; libFuzzer
// (ATTUNE_FUZZ=ON, clang) or replay_main.cc (every build) calls it.
#ifndef ATTUNE_TESTS_FUZZ_FUZZ_INPUT_H_
#define ATTUNE_TESTS_FUZZ_FUZZ_INPUT_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace attune::fuzz {

// An anonymous file holding `size` bytes at `data`, closed by the destructor. fd() is -1 when
// memfd_create failed.
class MemoryFile {
 public:
  MemoryFile(const uint8_t* data, size_t size) : fd_(memfd_create("attune-fuzz", MFD_CLOEXEC)) {
    size_t done = 0;
    while (fd_ >= 0 && done < size) {
      const ssize_t n = write(fd_, data + done, size - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    if (fd_ >= 0) lseek(fd_, 0, SEEK_SET);
  }
  ~MemoryFile() {
    if (fd_ >= 0) close(fd_);
  }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  int fd() const { return fd_; }
  // A path that opens the same file.
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }
  // A second descriptor, for readers that take ownership of one.
  int Dup() const { return fd_ >= 0 ? dup(fd_) : -1; }

 private:
  const int fd_;
};

// The bytes as a regular file under $TMPDIR (one path per process, rewritten on each call), for
// readers that refuse links such as /proc/self/fd/N (common/confined_file.h opens with
// O_NOFOLLOW). Removed by the destructor.
class TempFile {
 public:
  TempFile(const uint8_t* data, size_t size, const char* suffix) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/attune-fuzz-" +
            std::to_string(getpid()) + suffix;
    std::FILE* out = std::fopen(path_.c_str(), "wb");
    ok_ = out != nullptr && std::fwrite(data, 1, size, out) == size;
    if (out != nullptr) ok_ = std::fclose(out) == 0 && ok_;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool ok_ = false;
};

}  // namespace attune::fuzz

#endif  // ATTUNE_TESTS_FUZZ_FUZZ_INPUT_H_
