// Kept apart from i2v.cpp so the size and mask arithmetic links without the resize op.
#include <cstring>

#include "ops/resize.h"
#include "pipeline/i2v.h"

namespace x2v::pipeline {

Tensor i2v_vae_input(const Tensor& image_unit, int frames, int h, int w) {
  if (image_unit.dim() != 3 || image_unit.size(0) != 3)
    fail(ErrorKind::InvalidArgument, "i2v: the image must be [3, H, W], got ", image_unit.desc());
  Tensor first = ops::resize_bicubic(image_unit.to(DType::F32), h, w).to(Device::CPU);
  Tensor v = Tensor::zeros({3, frames, h, w}, DType::F32);
  const float* src = first.data<float>();
  float* dst = v.data<float>();
  const int64_t plane = int64_t{h} * w;
  for (int c = 0; c < 3; ++c) std::memcpy(dst + int64_t{c} * frames * plane, src + c * plane, plane * sizeof(float));
  return v;
}

}  // namespace x2v::pipeline
