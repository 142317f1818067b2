// Tests: comparing the adapter files (adapter_model.safetensors, fp32) that two runs wrote.
#ifndef ATTUNE_SERVER_ENGINE_ADAPTER_FILE_DIFF_H_
#define ATTUNE_SERVER_ENGINE_ADAPTER_FILE_DIFF_H_

#include <algorithm>
#include <cmath>
#include <string>

#include "server/engine/safetensors.h"

namespace attune::engine {

// Largest |a - b| over every tensor of two adapter files; infinity when their tensors differ.
inline double MaxAdapterDifference(const std::string& a_path, const std::string& b_path) {
  auto a = SafetensorsFile::Open(a_path);
  auto b = SafetensorsFile::Open(b_path);
  if (!a.ok() || !b.ok() || (*a)->Names() != (*b)->Names()) return INFINITY;
  double worst = 0;
  for (const std::string& name : (*a)->Names()) {
    const TensorView* x = (*a)->Find(name);
    const TensorView* y = (*b)->Find(name);
    if (x->dtype != DType::kF32 || x->shape != y->shape) return INFINITY;
    const float* xf = reinterpret_cast<const float*>(x->data);
    const float* yf = reinterpret_cast<const float*>(y->data);
    for (size_t i = 0; i < x->byte_size / sizeof(float); ++i) {
      worst = std::max(worst, static_cast<double>(std::abs(xf[i] - yf[i])));
    }
  }
  return worst;
}

// Largest |element| of the adapter's lora_B tensors (zero when training has not moved them).
inline double MaxAbsLoraB(const std::string& path) {
  auto file = SafetensorsFile::Open(path);
  if (!file.ok()) return 0;
  double largest = 0;
  for (const std::string& name : (*file)->Names()) {
    if (name.find("lora_B") == std::string::npos) continue;
    const TensorView* t = (*file)->Find(name);
    const float* f = reinterpret_cast<const float*>(t->data);
    for (size_t i = 0; i < t->byte_size / sizeof(float); ++i) {
      largest = std::max(largest, static_cast<double>(std::abs(f[i])));
    }
  }
  return largest;
}

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_ADAPTER_FILE_DIFF_H_
