// The decoder layer's elementwise pieces, fused on CUDA. Internal to the engine.
//
// Each function has one meaning and two implementations. The reference one is plain LibTorch,
// the same expressions as transformers' Llama (it runs on the CPU, and on CUDA with
// Kernels::kReference). The fused one runs on CUDA tensors where this build has the kernels
// (cuda/): one kernel forward and one backward instead of a chain of elementwise ops, each reading
// and writing the [tokens, width] activations again. On the 1.1B benchmark's shapes they take the
// step from 252 to 170 ms on an H200 (bench/results/2026-11-29-h200.md). The fused kernels compute
// in fp32 and round once, so in bf16 they differ from the reference by rounding only.
#ifndef ATTUNE_SERVER_ENGINE_FUSED_OPS_H_
#define ATTUNE_SERVER_ENGINE_FUSED_OPS_H_

#include <torch/torch.h>

namespace attune::engine {

// Which implementation of the functions below runs.
enum class Kernels {
  kReference,  // the plain LibTorch expressions, on every device
  kFused,      // the fused kernels on CUDA tensors where this build has them; else the reference
};

// True when this build has the CUDA kernels (a CUDA toolkit and a CUDA LibTorch were found).
bool FusedKernelsBuilt();

// transformers' LlamaRMSNorm: x / sqrt(mean(x^2) + eps) in fp32, then weight * that in x's
// dtype. Fused: LibTorch's own at::rms_norm (one kernel each way, from LibTorch 2.4).
torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps,
                      Kernels kernels);

// silu(gate) * up (SwiGLU's gating), same shapes.
torch::Tensor SiluMul(const torch::Tensor& gate, const torch::Tensor& up, Kernels kernels);

// Rotary position embedding (rotate-half convention) of x [batch, seq, heads, head_dim] at
// positions 0..seq-1; cos and sin are fp32 [seq, head_dim / 2] (cos and sin of position times
// inverse frequency). Returns a contiguous [batch, seq, heads, head_dim] tensor in x's dtype. The
// reference rounds cos and sin to x's dtype first, as transformers does.
torch::Tensor ApplyRope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        Kernels kernels);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_FUSED_OPS_H_
