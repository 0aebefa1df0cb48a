#include "ops/norm_vae.h"

#include "ops/dispatch.h"
#ifdef X2V_WITH_CUDA
#include "ops/cuda/cuda.h"
#endif

namespace x2v::ops {

namespace cpu {
Tensor channel_rms_norm_silu(const Tensor& x, const Tensor& gamma);  // ops/cpu/norm_vae.cpp
}

Tensor channel_rms_norm_silu(const Tensor& x, const Tensor& gamma) {
  detail::common_device("channel_rms_norm_silu", {&x, &gamma});
  if (x.dim() < 1 || gamma.numel() != x.size(0))
    detail::bad_shape("channel_rms_norm_silu", "gamma " + gamma.desc() + " for " + x.desc());
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::channel_rms_norm_silu(x, gamma);
#endif
  if (!x.is_cpu()) fail(ErrorKind::Unsupported, "channel_rms_norm_silu: no ", device_name(x.device()), " implementation");
  return cpu::channel_rms_norm_silu(detail::host_f32(x), detail::host_f32(gamma));
}

}  // namespace x2v::ops
