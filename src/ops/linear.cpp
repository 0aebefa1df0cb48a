#include "ops/linear.h"

#include "ops/cpu/cpu.h"
#include "ops/dispatch.h"
#ifdef X2V_WITH_CUDA
#include "ops/cuda/cuda.h"
#endif

namespace x2v::ops {

using detail::bad_shape;
using detail::host_f32;

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, Act act, DType out) {
  detail::common_device("linear", {&x, &w, &bias});
  if (x.dim() < 1 || w.dim() != 2 || x.size(-1) != w.size(1))
    bad_shape("linear", "input " + x.desc() + " does not match weight " + w.desc());
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != w.size(0)))
    bad_shape("linear", "bias " + bias.desc() + " does not match weight " + w.desc());
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::linear(x, w, bias, act, out);
#endif
  Tensor y = cpu::linear(host_f32(x), host_f32(w), host_f32(bias), act);
  return out == DType::F32 ? y : y.to(out);
}

Tensor matmul_nt(const Tensor& a, const Tensor& b) {
  detail::common_device("matmul_nt", {&a, &b});
  if (a.dim() != 3 || b.dim() != 3 || a.size(0) != b.size(0) || a.size(2) != b.size(2))
    bad_shape("matmul_nt", a.desc() + " x " + b.desc() + "ᵀ");
#ifdef X2V_WITH_CUDA
  if (a.device() == Device::CUDA) return cuda::matmul_nt(a, b);
#endif
  return cpu::matmul_nt(host_f32(a), host_f32(b));
}

}  // namespace x2v::ops
