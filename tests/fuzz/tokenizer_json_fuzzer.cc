// Fuzz target: tokenizer.json (server/engine/tokenizer/tokenizer.h), and encoding a fixed text
// with whatever it accepts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/engine/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto tokenizer =
      attune::engine::Tokenizer::FromJson(std::string(reinterpret_cast<const char*>(data), size));
  if (tokenizer.ok()) {
    (*tokenizer)
        ->Encode(
            "Hello, world! \xc3\x9c"
            "n\xc3\xaf"
            "c\xc3\xb6"
            "d\xc3\xa9 123 ",
            attune::engine::SpecialTokens::kAdd);
  }
  return 0;
}
