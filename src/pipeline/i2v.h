// Wan2.1 I2V conditioning (docs/wan-spec.md §6.1): the output size from the image's aspect and a
// pixel budget, the 4-channel first-frame mask, and the VAE input video.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace x2v::pipeline {

// Python's float floor division (a // b on floats, numpy's too): computed through fmod, which
// differs from floor(a / b) when a / b rounds up to an integer.
double py_floordiv(double a, double b);

struct I2VSize {
  int lat_h = 0, lat_w = 0;
  int height() const { return lat_h * 8; }
  int width() const { return lat_w * 8; }
};

// lat_h = round(sqrt(max_area·h0/w0) // 8 // 2 · 2), lat_w likewise with w0/h0, in float64 exactly
// as the reference (an 832x480 image at max_area 399360 gives 464 rows, not 480).
// InvalidArgument if the result is empty or beyond the size limits.
I2VSize i2v_size(int64_t image_h, int64_t image_w, int64_t max_area);

// msk [4, T_lat, lat_h, lat_w] f32: latent frame 0 all ones, every other latent frame zeros.
Tensor i2v_mask(int frames, int lat_h, int lat_w);

// The VAE input [3, F, h, w] on `device`: frame 0 the image [3, h0, w0] (f32 in [-1, 1]) resized
// bicubically to (h, w) on the host, unclamped; frames 1..F-1 zero.
Tensor i2v_vae_input(const Tensor& image_unit, int frames, int h, int w, Device device = Device::CPU);

}  // namespace x2v::pipeline
