// Fuzz target: attuned's --auth-tokens file (server/auth/tokens_file.h).
#include <cstddef>
#include <cstdint>

#include "server/auth/tokens_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  attune::auth::ParseTokensFile(absl::string_view(reinterpret_cast<const char*>(data), size))
      .IgnoreError();
  return 0;
}
