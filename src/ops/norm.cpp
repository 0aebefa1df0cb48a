#include "ops/norm.h"

#include "ops/cpu/cpu.h"
#include "ops/dispatch.h"
#ifdef X2V_WITH_CUDA
#include "ops/cuda/cuda.h"
#endif

namespace x2v::ops {

using detail::bad_shape;
using detail::host_f32;

namespace {
void check_row_param(const char* op, const Tensor& x, const Tensor& p, const char* name) {
  if (p.defined() && p.numel() != x.size(-1))
    bad_shape(op, std::string(name) + " " + p.desc() + " does not match the last dim of " + x.desc());
}
}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  detail::common_device("layer_norm", {&x, &weight, &bias});
  check_row_param("layer_norm", x, weight, "weight");
  check_row_param("layer_norm", x, bias, "bias");
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::layer_norm(x, weight, bias, eps, x.dtype());
#endif
  return cpu::layer_norm(host_f32(x), host_f32(weight), host_f32(bias), eps);
}

Tensor layer_norm_modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, float eps) {
  detail::common_device("layer_norm_modulate", {&x, &shift, &scale});
  const int64_t D = x.size(-1);
  const bool ok = shift.numel() == scale.numel() && (shift.numel() == D || shift.numel() == x.numel());
  if (!ok) bad_shape("layer_norm_modulate", "shift " + shift.desc() + " / scale " + scale.desc() + " for " + x.desc());
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::layer_norm_modulate(x, shift, scale, eps, x.dtype());
#endif
  return cpu::layer_norm_modulate(host_f32(x), host_f32(shift), host_f32(scale), eps);
}

namespace {
void check_residual(const char* op, const Tensor& x, const Residual& r) {
  if (!r.y.defined()) return;
  if (r.y.numel() != x.numel()) bad_shape(op, x.desc() + " += " + r.y.desc());
  if (r.gate.defined() && r.gate.numel() != x.size(-1) && r.gate.numel() != x.numel())
    bad_shape(op, "gate " + r.gate.desc() + " is neither a row nor one row per token of " + x.desc());
}
void check_stream(const char* op, const Tensor& x) {
  if (x.dtype() != DType::F32) bad_shape(op, "the residual " + x.desc() + " must be f32");
}
// x += r on the CPU.
void cpu_residual(Tensor& x, const Residual& r) {
  if (!r.y.defined()) return;
  if (r.gate.defined())
    cpu::gated_add_(x, host_f32(r.y), host_f32(r.gate));
  else
    cpu::add_(x, host_f32(r.y));
}
Tensor as_out(const Tensor& y, DType out) { return y.dtype() == out ? y : y.to(out); }
}  // namespace

Tensor add_layer_norm(const Tensor& x, const Residual& r, const Tensor& weight, const Tensor& bias, float eps,
                      DType out) {
  detail::common_device("add_layer_norm", {&x, &r.y, &r.gate, &weight, &bias});
  check_stream("add_layer_norm", x);
  check_residual("add_layer_norm", x, r);
  check_row_param("add_layer_norm", x, weight, "weight");
  check_row_param("add_layer_norm", x, bias, "bias");
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA)
    return r.y.defined() ? cuda::add_layer_norm(x, r.y, r.gate, weight, bias, eps, out)
                         : cuda::layer_norm(x, weight, bias, eps, out);
#endif
  Tensor v = x.clone();
  cpu_residual(v, r);
  return as_out(cpu::layer_norm(v, host_f32(weight), host_f32(bias), eps), out);
}

Tensor add_layer_norm_modulate(Tensor& x, const Residual& r1, const Residual& r2, const Tensor& shift,
                               const Tensor& scale, float eps, DType out) {
  detail::common_device("add_layer_norm_modulate", {&x, &r1.y, &r1.gate, &r2.y, &r2.gate, &shift, &scale});
  check_stream("add_layer_norm_modulate", x);
  check_residual("add_layer_norm_modulate", x, r1);
  check_residual("add_layer_norm_modulate", x, r2);
  const int64_t D = x.size(-1);
  if (shift.numel() != scale.numel() || (shift.numel() != D && shift.numel() != x.numel()))
    bad_shape("add_layer_norm_modulate", "shift " + shift.desc() + " / scale " + scale.desc() + " for " + x.desc());
  // A lone second update is a first one.
  const Residual& a = r1.y.defined() ? r1 : r2;
  const Residual b = r1.y.defined() ? r2 : Residual{};
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA)
    return a.y.defined() ? cuda::add_layer_norm_modulate(x, a.y, a.gate, b.y, b.gate, shift, scale, eps, out)
                         : cuda::layer_norm_modulate(x, shift, scale, eps, out);
#endif
  cpu_residual(x, a);
  cpu_residual(x, b);
  return as_out(cpu::layer_norm_modulate(x, host_f32(shift), host_f32(scale), eps), out);
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  detail::common_device("rms_norm", {&x, &weight});
  check_row_param("rms_norm", x, weight, "weight");
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::rms_norm(x, weight, eps, x.dtype());
#endif
  return cpu::rms_norm(host_f32(x), host_f32(weight), eps);
}

namespace {
Tensor channel_rms(const char* op, const Tensor& x, const Tensor& gamma, bool silu) {
  detail::common_device(op, {&x, &gamma});
  if (x.dim() < 1 || gamma.numel() != x.size(0)) bad_shape(op, "gamma " + gamma.desc() + " for " + x.desc());
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return silu ? cuda::channel_rms_norm_silu(x, gamma) : cuda::channel_rms_norm(x, gamma);
#endif
  return silu ? cpu::channel_rms_norm_silu(host_f32(x), host_f32(gamma)) : cpu::channel_rms_norm(host_f32(x), host_f32(gamma));
}
}  // namespace

Tensor channel_rms_norm(const Tensor& x, const Tensor& gamma) { return channel_rms("channel_rms_norm", x, gamma, false); }

Tensor channel_rms_norm_silu(const Tensor& x, const Tensor& gamma) {
  return channel_rms("channel_rms_norm_silu", x, gamma, true);
}

}  // namespace x2v::ops
