#include "ops/rope.h"

#include "ops/cpu/cpu.h"
#include "ops/dispatch.h"
#ifdef X2V_WITH_CUDA
#include "ops/cuda/cuda.h"
#endif

namespace x2v::ops {

Tensor rope_3d(const Tensor& x, int64_t F, int64_t Hg, int64_t Wg) {
  if (x.dim() != 3 || x.size(2) % 2 || F < 0 || Hg < 0 || Wg < 0 || F * Hg * Wg > x.size(0))
    detail::bad_shape("rope_3d", x.desc() + " for grid " + std::to_string(F) + "x" + std::to_string(Hg) + "x" +
                                     std::to_string(Wg));
  if (F > 1024 || Hg > 1024 || Wg > 1024)
    fail(ErrorKind::InvalidArgument, "rope_3d: grid ", F, "x", Hg, "x", Wg,
         " exceeds the model's 1024 positions per axis (frames or size too large)");
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::rope_3d(x, F, Hg, Wg);
#endif
  return cpu::rope_3d(detail::host_f32(x), F, Hg, Wg);
}

Tensor rms_norm_rope(const Tensor& x, const Tensor& weight, float eps, int64_t heads, int64_t F, int64_t Hg,
                     int64_t Wg) {
  detail::common_device("rms_norm_rope", {&x, &weight});
  const int64_t Dm = x.dim() == 2 ? x.size(1) : 0;
  if (x.dim() != 2 || heads <= 0 || Dm % heads || (Dm / heads) % 2 || !weight.defined() || weight.numel() != Dm ||
      F < 0 || Hg < 0 || Wg < 0 || F * Hg * Wg != x.size(0))
    detail::bad_shape("rms_norm_rope", "x " + x.desc() + ", weight " + (weight.defined() ? weight.desc() : "none") +
                                           ", " + std::to_string(heads) + " heads, grid " + std::to_string(F) + "x" +
                                           std::to_string(Hg) + "x" + std::to_string(Wg) +
                                           " (x [F·Hg·Wg, H·D] with an even D, weight [H·D])");
  if (F > 1024 || Hg > 1024 || Wg > 1024)
    fail(ErrorKind::InvalidArgument, "rms_norm_rope: grid ", F, "x", Hg, "x", Wg,
         " exceeds the model's 1024 positions per axis (frames or size too large)");
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::rms_norm_rope(x, weight, eps, heads, F, Hg, Wg);
#endif
  Tensor n = cpu::rms_norm(detail::host_f32(x), detail::host_f32(weight), eps);
  return cpu::rope_3d(n.reshape({x.size(0), heads, Dm / heads}), F, Hg, Wg);
}

}  // namespace x2v::ops
