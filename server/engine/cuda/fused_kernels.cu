#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "server/engine/cuda/fused_kernels.h"

namespace attune::engine::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) {
  return __float2half_rn(v);
}

// kVec elements of T in one 16-byte load or store.
template <typename T>
struct alignas(16) Pack {
  static constexpr int kVec = 16 / sizeof(T);
  T v[kVec];
};

__device__ __forceinline__ float Sigmoid(float x) { return 1.0f / (1.0f + __expf(-x)); }

// Each thread handles one Pack; the tail (n not a multiple of the pack) goes element by element.
template <typename T>
__global__ void SwigluForwardKernel(const T* __restrict__ gate, const T* __restrict__ up,
                                    T* __restrict__ out, int64_t n) {
  using P = Pack<T>;
  const int64_t packs = n / P::kVec;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < packs;
       i += stride) {
    const P g = reinterpret_cast<const P*>(gate)[i];
    const P u = reinterpret_cast<const P*>(up)[i];
    P o;
#pragma unroll
    for (int k = 0; k < P::kVec; ++k) {
      const float x = ToFloat(g.v[k]);
      o.v[k] = FromFloat<T>(x * Sigmoid(x) * ToFloat(u.v[k]));
    }
    reinterpret_cast<P*>(out)[i] = o;
  }
  for (int64_t i = packs * P::kVec + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       i < n; i += stride) {
    const float x = ToFloat(gate[i]);
    out[i] = FromFloat<T>(x * Sigmoid(x) * ToFloat(up[i]));
  }
}

__device__ __forceinline__ void SwigluGrad(float x, float u, float d, float* dg, float* du) {
  const float s = Sigmoid(x);
  const float silu = x * s;
  *du = d * silu;
  *dg = d * u * s * (1.0f + x * (1.0f - s));
}

template <typename T>
__global__ void SwigluBackwardKernel(const T* __restrict__ gate, const T* __restrict__ up,
                                     const T* __restrict__ d_out, T* __restrict__ d_gate,
                                     T* __restrict__ d_up, int64_t n) {
  using P = Pack<T>;
  const int64_t packs = n / P::kVec;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < packs;
       i += stride) {
    const P g = reinterpret_cast<const P*>(gate)[i];
    const P u = reinterpret_cast<const P*>(up)[i];
    const P d = reinterpret_cast<const P*>(d_out)[i];
    P dg, du;
#pragma unroll
    for (int k = 0; k < P::kVec; ++k) {
      float a, b;
      SwigluGrad(ToFloat(g.v[k]), ToFloat(u.v[k]), ToFloat(d.v[k]), &a, &b);
      dg.v[k] = FromFloat<T>(a);
      du.v[k] = FromFloat<T>(b);
    }
    reinterpret_cast<P*>(d_gate)[i] = dg;
    reinterpret_cast<P*>(d_up)[i] = du;
  }
  for (int64_t i = packs * P::kVec + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       i < n; i += stride) {
    float a, b;
    SwigluGrad(ToFloat(gate[i]), ToFloat(up[i]), ToFloat(d_out[i]), &a, &b);
    d_gate[i] = FromFloat<T>(a);
    d_up[i] = FromFloat<T>(b);
  }
}

// One thread per (row, head, i < half): the pair (i, i + half) of one head at one position.
template <typename T>
__global__ void RopeKernel(const T* x, const float* __restrict__ cos, const float* __restrict__ sin,
                           T* out, int64_t rows, int64_t heads, int64_t half, int64_t seq_len,
                           float sign) {
  const int64_t total = rows * heads * half;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += stride) {
    const int64_t i = idx % half;
    const int64_t row_head = idx / half;
    const int64_t row = row_head / heads;
    const int64_t pos = row % seq_len;
    const int64_t base = row_head * 2 * half;
    const float c = cos[pos * half + i];
    const float s = sign * sin[pos * half + i];
    const float a = ToFloat(x[base + i]);
    const float b = ToFloat(x[base + i + half]);
    out[base + i] = FromFloat<T>(a * c - b * s);
    out[base + i + half] = FromFloat<T>(b * c + a * s);
  }
}

int Blocks(int64_t work) {
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

template <typename T>
void LaunchSwigluForward(const void* gate, const void* up, void* out, int64_t n,
                         cudaStream_t stream) {
  SwigluForwardKernel<T><<<Blocks(n / Pack<T>::kVec + 1), kThreads, 0, stream>>>(
      static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<T*>(out), n);
}

template <typename T>
void LaunchSwigluBackward(const void* gate, const void* up, const void* d_out, void* d_gate,
                          void* d_up, int64_t n, cudaStream_t stream) {
  SwigluBackwardKernel<T><<<Blocks(n / Pack<T>::kVec + 1), kThreads, 0, stream>>>(
      static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<const T*>(d_out),
      static_cast<T*>(d_gate), static_cast<T*>(d_up), n);
}

template <typename T>
void LaunchRope(const void* x, const float* cos, const float* sin, void* out, int64_t rows,
                int64_t heads, int64_t head_dim, int64_t seq_len, float sign, cudaStream_t stream) {
  const int64_t half = head_dim / 2;
  RopeKernel<T><<<Blocks(rows * heads * half), kThreads, 0, stream>>>(
      static_cast<const T*>(x), cos, sin, static_cast<T*>(out), rows, heads, half, seq_len, sign);
}

}  // namespace

void SwigluForward(ElementType type, const void* gate, const void* up, void* out, int64_t n,
                   void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (type) {
    case ElementType::kFloat32:
      return LaunchSwigluForward<float>(gate, up, out, n, s);
    case ElementType::kBFloat16:
      return LaunchSwigluForward<__nv_bfloat16>(gate, up, out, n, s);
    case ElementType::kFloat16:
      return LaunchSwigluForward<__half>(gate, up, out, n, s);
  }
}

void SwigluBackward(ElementType type, const void* gate, const void* up, const void* d_out,
                    void* d_gate, void* d_up, int64_t n, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (type) {
    case ElementType::kFloat32:
      return LaunchSwigluBackward<float>(gate, up, d_out, d_gate, d_up, n, s);
    case ElementType::kBFloat16:
      return LaunchSwigluBackward<__nv_bfloat16>(gate, up, d_out, d_gate, d_up, n, s);
    case ElementType::kFloat16:
      return LaunchSwigluBackward<__half>(gate, up, d_out, d_gate, d_up, n, s);
  }
}

void Rope(ElementType type, const void* x, const float* cos, const float* sin, void* out,
          int64_t rows, int64_t heads, int64_t head_dim, int64_t seq_len, float sign,
          void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (type) {
    case ElementType::kFloat32:
      return LaunchRope<float>(x, cos, sin, out, rows, heads, head_dim, seq_len, sign, s);
    case ElementType::kBFloat16:
      return LaunchRope<__nv_bfloat16>(x, cos, sin, out, rows, heads, head_dim, seq_len, sign, s);
    case ElementType::kFloat16:
      return LaunchRope<__half>(x, cos, sin, out, rows, heads, head_dim, seq_len, sign, s);
  }
}

const char* LastError() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? "" : cudaGetErrorString(e);
}

}  // namespace attune::engine::cuda
