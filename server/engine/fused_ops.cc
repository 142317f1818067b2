#include "server/engine/fused_ops.h"

#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/version.h>

#include <cstdint>

#include "server/engine/torch_version.h"

#if defined(ATTUNE_CUDA_KERNELS)
#include <c10/cuda/CUDAStream.h>

#include "server/engine/cuda/fused_kernels.h"
#endif

namespace attune::engine {
namespace {

torch::Tensor RmsNormReference(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  torch::Tensor h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * h.to(x.scalar_type());
}

torch::Tensor RopeReference(const torch::Tensor& x, const torch::Tensor& cos,
                            const torch::Tensor& sin) {
  const int64_t seq = x.size(1);
  const int64_t half = x.size(-1) / 2;
  const torch::Tensor c =
      torch::cat({cos, cos}, -1).to(x.scalar_type()).view({1, seq, 1, 2 * half});
  const torch::Tensor s =
      torch::cat({sin, sin}, -1).to(x.scalar_type()).view({1, seq, 1, 2 * half});
  const torch::Tensor rotated = torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
  return (x * c + rotated * s).contiguous();
}

#if defined(ATTUNE_CUDA_KERNELS)

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool Supported(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  return t.is_cuda() &&
         (type == torch::kFloat32 || type == torch::kBFloat16 || type == torch::kFloat16);
}

cuda::ElementType TypeOf(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kBFloat16:
      return cuda::ElementType::kBFloat16;
    case torch::kFloat16:
      return cuda::ElementType::kFloat16;
    default:
      return cuda::ElementType::kFloat32;
  }
}

// Contiguous and 16-byte aligned, as the kernels' vector loads need.
torch::Tensor Aligned(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  if (reinterpret_cast<uintptr_t>(c.data_ptr()) % 16 != 0) c = c.clone();
  return c;
}

void* StreamOf(const torch::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

void CheckLaunch(const char* what) {
  const char* error = cuda::LastError();
  TORCH_CHECK(error[0] == '\0', what, ": CUDA kernel launch failed: ", error);
}

class SiluMulFunction : public torch::autograd::Function<SiluMulFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate,
                               const torch::Tensor& up) {
    const torch::Tensor g = Aligned(gate);
    const torch::Tensor u = Aligned(up);
    torch::Tensor out = torch::empty_like(g);
    cuda::SwigluForward(TypeOf(g), g.data_ptr(), u.data_ptr(), out.data_ptr(), g.numel(),
                        StreamOf(g));
    CheckLaunch("SiluMul");
    ctx->save_for_backward({g, u});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& g = saved[0];
    const torch::Tensor& u = saved[1];
    const torch::Tensor d = Aligned(grads[0].to(g.scalar_type()));
    torch::Tensor d_gate = torch::empty_like(g);
    torch::Tensor d_up = torch::empty_like(u);
    cuda::SwigluBackward(TypeOf(g), g.data_ptr(), u.data_ptr(), d.data_ptr(), d_gate.data_ptr(),
                         d_up.data_ptr(), g.numel(), StreamOf(g));
    CheckLaunch("SiluMul backward");
    return {d_gate, d_up};
  }
};

torch::Tensor LaunchRope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                         float sign) {
  const torch::Tensor in = x.contiguous();
  torch::Tensor out = torch::empty_like(in);
  cuda::Rope(TypeOf(in), in.data_ptr(), cos.data_ptr<float>(), sin.data_ptr<float>(),
             out.data_ptr(), in.size(0) * in.size(1), in.size(2), in.size(3), in.size(1), sign,
             StreamOf(in));
  CheckLaunch("ApplyRope");
  return out;
}

class RopeFunction : public torch::autograd::Function<RopeFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& cos, const torch::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return LaunchRope(x, cos, sin, 1.0f);
  }

  // The rotation's transpose is the rotation by minus the angle.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    return {LaunchRope(grads[0], saved[0], saved[1], -1.0f), torch::Tensor(), torch::Tensor()};
  }
};

#endif  // ATTUNE_CUDA_KERNELS

}  // namespace

bool FusedKernelsBuilt() {
#if defined(ATTUNE_CUDA_KERNELS)
  return true;
#else
  return false;
#endif
}

torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps,
                      Kernels kernels) {
#if ATTUNE_TORCH_AT_LEAST(2, 4)
  if (kernels == Kernels::kFused && x.is_cuda() && x.scalar_type() == weight.scalar_type()) {
    // Outside autocast, which would run it in fp32: the kernel accumulates in fp32 anyway.
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    return at::rms_norm(x, {x.size(-1)}, weight, eps);
  }
#endif
  return RmsNormReference(x, weight, eps);
}

torch::Tensor SiluMul(const torch::Tensor& gate, const torch::Tensor& up, Kernels kernels) {
#if defined(ATTUNE_CUDA_KERNELS)
  if (kernels == Kernels::kFused && Supported(gate) && gate.scalar_type() == up.scalar_type() &&
      gate.sizes() == up.sizes()) {
    return SiluMulFunction::apply(gate, up);
  }
#endif
  (void)kernels;
  return torch::silu(gate) * up;
}

torch::Tensor ApplyRope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        Kernels kernels) {
#if defined(ATTUNE_CUDA_KERNELS)
  if (kernels == Kernels::kFused && Supported(x) && x.dim() == 4 && x.size(-1) % 2 == 0 &&
      cos.scalar_type() == torch::kFloat32 && sin.scalar_type() == torch::kFloat32 &&
      cos.is_contiguous() && sin.is_contiguous()) {
    return RopeFunction::apply(x, cos, sin);
  }
#endif
  (void)kernels;
  return RopeReference(x, cos, sin);
}

}  // namespace attune::engine
