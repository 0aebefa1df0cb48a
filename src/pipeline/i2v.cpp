#include "pipeline/i2v.h"

#include <cmath>

#include "pipeline/request.h"

namespace x2v::pipeline {

double py_floordiv(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) div -= 1.0;
  }
  if (div != 0.0) {
    double fl = std::floor(div);
    if (div - fl > 0.5) fl += 1.0;
    return fl;
  }
  return std::copysign(0.0, a / b);
}

I2VSize i2v_size(int64_t image_h, int64_t image_w, int64_t max_area) {
  if (image_h < 1 || image_w < 1) fail(ErrorKind::InvalidArgument, "the input image is empty");
  const double aspect = static_cast<double>(image_h) / static_cast<double>(image_w);
  const double area = static_cast<double>(max_area);
  // vae stride 8, patch 2: floor-divide by each, then multiply back by the patch.
  const double lh = py_floordiv(py_floordiv(std::sqrt(area * aspect), 8.0), 2.0) * 2.0;
  const double lw = py_floordiv(py_floordiv(std::sqrt(area / aspect), 8.0), 2.0) * 2.0;
  I2VSize s;
  s.lat_h = static_cast<int>(std::nearbyint(lh));
  s.lat_w = static_cast<int>(std::nearbyint(lw));
  if (s.lat_h < 2 || s.lat_w < 2)
    fail(ErrorKind::InvalidArgument, "an image of ", image_w, "x", image_h, " at --max-area ", max_area,
         " gives an empty video (", s.lat_w * 8, "x", s.lat_h * 8,
         "); the image is too elongated for this pixel budget: raise --max-area or crop the image");
  if (s.height() > kMaxSide || s.width() > kMaxSide)
    fail(ErrorKind::InvalidArgument, "an image of ", image_w, "x", image_h, " at --max-area ", max_area, " gives ",
         s.width(), "x", s.height(), ", beyond the ", kMaxSide, "-pixel limit per side; crop the image");
  return s;
}

Tensor i2v_mask(int frames, int lat_h, int lat_w) {
  X2V_CHECK(frames >= 1 && (frames - 1) % 4 == 0 && lat_h > 0 && lat_w > 0);
  const int t_lat = (frames - 1) / 4 + 1;
  // Reference: ones at pixel frame 0, that frame repeated 4 times (F+3 frames), regrouped as
  // [T_lat, 4] and transposed. Built the same way so the layout is the reference's by construction.
  const int padded = frames + 3;
  std::vector<float> per_frame(padded, 0.f);
  for (int i = 0; i < 4; ++i) per_frame[i] = 1.f;  // frame 0 four times; the rest are frames 1..F-1 = 0
  Tensor m = Tensor::empty({4, t_lat, lat_h, lat_w}, DType::F32);
  float* p = m.data<float>();
  const int64_t plane = int64_t{lat_h} * lat_w;
  for (int c = 0; c < 4; ++c)
    for (int k = 0; k < t_lat; ++k) {
      const float v = per_frame[k * 4 + c];
      float* dst = p + (int64_t{c} * t_lat + k) * plane;
      for (int64_t i = 0; i < plane; ++i) dst[i] = v;
    }
  return m;
}

}  // namespace x2v::pipeline
