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

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  detail::common_device("rms_norm", {&x, &weight});
  check_row_param("rms_norm", x, weight, "weight");
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::rms_norm(x, weight, eps, x.dtype());
#endif
  return cpu::rms_norm(host_f32(x), host_f32(weight), eps);
}

Tensor channel_rms_norm(const Tensor& x, const Tensor& gamma) {
  detail::common_device("channel_rms_norm", {&x, &gamma});
  if (x.dim() < 1 || gamma.numel() != x.size(0))
    bad_shape("channel_rms_norm", "gamma " + gamma.desc() + " for " + x.desc());
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::channel_rms_norm(x, gamma);
#endif
  return cpu::channel_rms_norm(host_f32(x), host_f32(gamma));
}

}  // namespace x2v::ops
