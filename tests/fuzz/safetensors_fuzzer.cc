// Fuzz target: a .safetensors file's header and offsets (server/engine/safetensors.h).
#include <cstddef>
#include <cstdint>

#include "server/engine/safetensors.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  attune::fuzz::MemoryFile file(data, size);
  if (file.fd() < 0) return 0;
  attune::engine::SafetensorsFile::Map("fuzz.safetensors", attune::ScopedFd(file.Dup()))
      .IgnoreError();
  return 0;
}
