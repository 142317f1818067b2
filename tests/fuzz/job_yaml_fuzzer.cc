// Fuzz target: the YAML job file of `attune submit --config` (client/job_spec_input.h). The
// input goes to JobSpecFromYamlText, the parse that JobSpecFromYamlFile runs on the file's bytes
// once it has read them (yaml-cpp's Load, then the same node-to-spec conversion), with no
// temporary file per input. That did not make it faster: about half its time is ASan's
// allocator storing a stack per yaml-cpp allocation (bench/results/2026-12-02-fuzz.md).
#include <cstddef>
#include <cstdint>
#include <string>

#include "client/job_spec_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  attune::client::JobSpecFromYamlText(yaml, "/fuzz", "fuzz.yaml").IgnoreError();
  return 0;
}
