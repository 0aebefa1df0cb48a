#include "ops/resize.h"

#include "ops/dispatch.h"

namespace x2v::ops {

namespace cpu {
Tensor resize_bicubic(const Tensor& x, int64_t oh, int64_t ow);  // ops/cpu/resize.cpp
}

Tensor resize_bicubic(const Tensor& x, int64_t oh, int64_t ow) {
  if (x.dim() != 3 || x.size(1) < 1 || x.size(2) < 1 || oh < 1 || ow < 1)
    detail::bad_shape("resize_bicubic", x.desc() + " to " + std::to_string(oh) + "x" + std::to_string(ow) +
                                            " (needs [C, H, W] with H, W >= 1 and a positive output size)");
  if (oh > (1 << 16) || ow > (1 << 16))
    fail(ErrorKind::InvalidArgument, "resize_bicubic: output size ", oh, "x", ow, " is larger than 65536 per side");
  if (!x.is_cpu()) fail(ErrorKind::Unsupported, "resize_bicubic: no ", device_name(x.device()), " implementation");
  return cpu::resize_bicubic(detail::host_f32(x), oh, ow);
}

}  // namespace x2v::ops
