// ATTUNE_TORCH_AT_LEAST(major, minor): true when the LibTorch being compiled against is at least
// that version. Debian's CPU build (CI) is 1.13; the GPU machine's is 2.11. Internal to the
// engine.
#ifndef ATTUNE_SERVER_ENGINE_TORCH_VERSION_H_
#define ATTUNE_SERVER_ENGINE_TORCH_VERSION_H_

#include <torch/version.h>

#define ATTUNE_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||         \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#endif  // ATTUNE_SERVER_ENGINE_TORCH_VERSION_H_
