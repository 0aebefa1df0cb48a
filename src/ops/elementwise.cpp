#include "ops/elementwise.h"

#include "ops/cpu/cpu.h"
#include "ops/dispatch.h"
#ifdef X2V_WITH_CUDA
#include "ops/cuda/cuda.h"
#endif

namespace x2v::ops {

using detail::bad_shape;
using detail::host_f32;

namespace {
// b is either a's shape or one row broadcast over a's last dim.
void check_broadcast(const char* op, const Tensor& a, const Tensor& b) {
  const bool same = a.numel() == b.numel();
  const bool row = a.dim() >= 1 && b.numel() == a.size(-1);
  if (!(same || row)) bad_shape(op, a.desc() + " with " + b.desc());
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  detail::common_device("add", {&a, &b});
  check_broadcast("add", a, b);
#ifdef X2V_WITH_CUDA
  if (a.device() == Device::CUDA) return cuda::binary(a, b, cuda::Binary::Add);
#endif
  return cpu::binary(host_f32(a), host_f32(b), cpu::Binary::Add);
}

Tensor mul(const Tensor& a, const Tensor& b) {
  detail::common_device("mul", {&a, &b});
  check_broadcast("mul", a, b);
#ifdef X2V_WITH_CUDA
  if (a.device() == Device::CUDA) return cuda::binary(a, b, cuda::Binary::Mul);
#endif
  return cpu::binary(host_f32(a), host_f32(b), cpu::Binary::Mul);
}

Tensor scale(const Tensor& a, float s) { return axpby(a, s, a, 0.f); }

Tensor axpby(const Tensor& a, float alpha, const Tensor& b, float beta) {
  detail::common_device("axpby", {&a, &b});
  if (a.numel() != b.numel()) bad_shape("axpby", a.desc() + " with " + b.desc());
#ifdef X2V_WITH_CUDA
  if (a.device() == Device::CUDA) return cuda::axpby(a, alpha, b, beta);
#endif
  return cpu::axpby(host_f32(a), alpha, host_f32(b), beta);
}

Tensor silu(const Tensor& x) {
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::unary(x, cuda::Unary::SiLU);
#endif
  return cpu::unary(host_f32(x), cpu::Unary::SiLU);
}
Tensor gelu_tanh(const Tensor& x) {
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::unary(x, cuda::Unary::GeluTanh);
#endif
  return cpu::unary(host_f32(x), cpu::Unary::GeluTanh);
}
Tensor gelu_erf(const Tensor& x) {
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::unary(x, cuda::Unary::GeluErf);
#endif
  return cpu::unary(host_f32(x), cpu::Unary::GeluErf);
}
Tensor clamp(const Tensor& x, float lo, float hi) {
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::clamp(x, lo, hi);
#endif
  return cpu::clamp(host_f32(x), lo, hi);
}

void gated_add_(Tensor& x, const Tensor& y, const Tensor& gate) {
  detail::common_device("gated_add_", {&x, &y, &gate});
  if (x.dtype() != DType::F32) bad_shape("gated_add_", "the residual " + x.desc() + " must be f32");
  if (y.numel() != x.numel()) bad_shape("gated_add_", x.desc() + " += " + y.desc());
  check_broadcast("gated_add_", x, gate);
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::gated_add_(x, y, gate);
#endif
  cpu::gated_add_(x, host_f32(y), host_f32(gate));
}

void add_(Tensor& x, const Tensor& y) {
  detail::common_device("add_", {&x, &y});
  if (y.numel() != x.numel()) bad_shape("add_", x.desc() + " += " + y.desc());
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::add_(x, y);  // any float dtype, accumulated in f32
#endif
  if (x.dtype() != DType::F32) bad_shape("add_", "the CPU backend updates f32 tensors in place, not " + x.desc());
  cpu::add_(x, host_f32(y));
}

}  // namespace x2v::ops
