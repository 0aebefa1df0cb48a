// Kept apart from i2v.cpp so the size and mask arithmetic links without the resize op.
#include "ops/resize.h"
#include "pipeline/i2v.h"

namespace x2v::pipeline {

Tensor i2v_vae_input(const Tensor& image_unit, int frames, int h, int w, Device device) {
  if (image_unit.dim() != 3 || image_unit.size(0) != 3)
    fail(ErrorKind::InvalidArgument, "i2v: the image must be [3, H, W], got ", image_unit.desc());
  Tensor first = ops::resize_bicubic(image_unit.to(Device::CPU).to(DType::F32), h, w);
  // Zeros made where the video goes, so only the one real frame crosses to a device.
  Tensor v = Tensor::zeros({3, frames, h, w}, DType::F32, device);
  for (int64_t c = 0; c < 3; ++c) v[c][0].copy_from(first[c]);
  return v;
}

}  // namespace x2v::pipeline
