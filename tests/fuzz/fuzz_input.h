// Helpers for the fuzz targets: the input bytes as an in-memory file (memfd), for the readers
// that take a path or a descriptor. Each fuzz target defines LLVMFuzzerTestOneInput; libFuzzer
// (ATTUNE_FUZZ=ON, clang) or replay_main.cc (every build) calls it.
#ifndef ATTUNE_TESTS_FUZZ_FUZZ_INPUT_H_
#define ATTUNE_TESTS_FUZZ_FUZZ_INPUT_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
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

}  // namespace attune::fuzz

#endif  // ATTUNE_TESTS_FUZZ_FUZZ_INPUT_H_
