// Fused elementwise kernels for the decoder layer on CUDA, behind a plain C++ interface (no
// LibTorch, no CUDA headers), so that nvcc never sees LibTorch and the engine's C++ files never
// need the toolkit. Internal to the engine: fused_ops.cc is the only caller; it checks shapes,
// dtypes, contiguity and devices before calling, and passes the current CUDA stream.
//
// Each kernel reads its inputs once and writes its outputs once, computing in fp32 and rounding
// once to the element type (the unfused LibTorch expressions round after every op).
#ifndef ATTUNE_SERVER_ENGINE_CUDA_FUSED_KERNELS_H_
#define ATTUNE_SERVER_ENGINE_CUDA_FUSED_KERNELS_H_

#include <cstdint>

namespace attune::engine::cuda {

enum class ElementType { kFloat32, kBFloat16, kFloat16 };

// out = silu(gate) * up, elementwise over n elements.
void SwigluForward(ElementType type, const void* gate, const void* up, void* out, int64_t n,
                   void* stream);

// From d_out: d_gate = d_out * up * silu'(gate), d_up = d_out * silu(gate).
void SwigluBackward(ElementType type, const void* gate, const void* up, const void* d_out,
                    void* d_gate, void* d_up, int64_t n, void* stream);

// Rotary embedding, rotate-half convention, on x laid out [rows, heads, head_dim] where row r
// is position r % seq_len. cos and sin are fp32 [seq_len, head_dim / 2]. For each pair
// (i, i + head_dim / 2): out_i = x_i c - x_j s, out_j = x_j c + x_i s, with s = sign * sin
// (sign -1 rotates back: the backward pass). out may alias x.
void Rope(ElementType type, const void* x, const float* cos, const float* sin, void* out,
          int64_t rows, int64_t heads, int64_t head_dim, int64_t seq_len, float sign, void* stream);

// The last CUDA error as text, cleared; empty when there was none.
const char* LastError();

}  // namespace attune::engine::cuda

#endif  // ATTUNE_SERVER_ENGINE_CUDA_FUSED_KERNELS_H_
