#include "ops/attention.h"

#include "ops/cpu/cpu.h"
#include "ops/dispatch.h"
#ifdef X2V_WITH_CUDA
#include "ops/cuda/cuda.h"
#endif

namespace x2v::ops {

using detail::bad_shape;
using detail::host_f32;

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& bias,
                 const Tensor& key_mask) {
  detail::common_device("attention", {&q, &k, &v, &bias, &key_mask});
  if (q.dim() != 3 || k.dim() != 3 || v.dim() != 3 || k.size(0) != v.size(0) || q.size(1) != k.size(1) ||
      k.size(1) != v.size(1) || q.size(2) != k.size(2))
    bad_shape("attention", "q " + q.desc() + ", k " + k.desc() + ", v " + v.desc());
  if (bias.defined() && bias.shape() != Shape{q.size(1), q.size(0), k.size(0)})
    bad_shape("attention", "bias " + bias.desc() + " should be [heads, Lq, Lk]");
  if (key_mask.defined() && key_mask.numel() != k.size(0))
    bad_shape("attention", "key mask " + key_mask.desc() + " for " + std::to_string(k.size(0)) + " keys");
#ifdef X2V_WITH_CUDA
  if (q.device() == Device::CUDA) return cuda::attention(q, k, v, scale, bias, key_mask);
#endif
  return cpu::attention(host_f32(q), host_f32(k), host_f32(v), scale, host_f32(bias), key_mask);
}

}  // namespace x2v::ops
