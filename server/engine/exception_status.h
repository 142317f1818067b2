// Exceptions at the engine's boundary, turned into absl::Status. Internal to the engine.
//
// LibTorch, the standard library and nlohmann::json report failures by throwing. The engine's
// parsing code catches its own (a bad file becomes INVALID_ARGUMENT naming the field where it is
// read); whatever else escapes is not the user's input but the machine or a bug, and is mapped
// here, once, for CheckSpec and RunTraining:
//   std::bad_alloc, c10::OutOfMemoryError (host or device out of memory)  RESOURCE_EXHAUSTED
//   c10::Error, any other std::exception, anything else thrown            INTERNAL
// Each message starts with `context` ("check", "training") and keeps the exception's text, e.g.
// "training: out of memory: CUDA out of memory. Tried to allocate 2.00 GiB ...".
#ifndef ATTUNE_SERVER_ENGINE_EXCEPTION_STATUS_H_
#define ATTUNE_SERVER_ENGINE_EXCEPTION_STATUS_H_

#include <string>

#include "absl/status/status.h"

namespace attune::engine {

// The status for the exception being handled. Call only inside a catch block.
absl::Status StatusOfCurrentException(const std::string& context);

// Calls `body` (returning absl::Status or absl::StatusOr<T>) and returns what it returns, or the
// status of the exception it throws. Never throws. Thread-safe when `body` is.
template <typename Body>
auto CatchExceptions(const std::string& context, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (...) {
    return StatusOfCurrentException(context);
  }
}

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_EXCEPTION_STATUS_H_
