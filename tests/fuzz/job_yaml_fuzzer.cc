// Fuzz target: the YAML job file of `attune submit --config` (client/job_spec_input.h).
#include <cstddef>
#include <cstdint>

#include "client/job_spec_input.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  attune::fuzz::MemoryFile file(data, size);
  if (file.fd() < 0) return 0;
  attune::client::JobSpecFromYamlFile(file.path()).IgnoreError();
  return 0;
}
