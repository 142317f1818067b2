// Fuzz target: a model's config.json (server/engine/hf_config.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/engine/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  attune::engine::ParseHfConfig(std::string(reinterpret_cast<const char*>(data), size),
                                "config.json")
      .IgnoreError();
  return 0;
}
