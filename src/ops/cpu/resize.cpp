#include <algorithm>
#include <cmath>
#include <vector>

#include "core/tensor.h"

namespace x2v::ops::cpu {

namespace {

// PyTorch's cubic convolution kernel (Keys, A = -0.75) as the four weights of the taps at
// floor(src) - 1 .. floor(src) + 2, for the fractional part t.
constexpr float kA = -0.75f;
float cubic_inner(float x) { return ((kA + 2) * x - (kA + 3)) * x * x + 1; }          // |x| <= 1
float cubic_outer(float x) { return ((kA * x - 5 * kA) * x + 8 * kA) * x - 4 * kA; }  // 1 < |x| < 2

struct Taps {
  int64_t idx[4];
  float w[4];
};

// One output axis: the source coordinate is in/out · (dst + 0.5) - 0.5 in f32 (align_corners=false;
// the cubic mode does not clamp it at 0), taps outside the image are clamped to the border.
std::vector<Taps> axis_taps(int64_t in, int64_t out) {
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  std::vector<Taps> taps(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const float src = scale * (static_cast<float>(o) + 0.5f) - 0.5f;
    const float fl = std::floor(src);
    const int64_t i0 = static_cast<int64_t>(fl);
    const float t = src - fl;
    Taps& tp = taps[static_cast<size_t>(o)];
    tp.w[0] = cubic_outer(t + 1);
    tp.w[1] = cubic_inner(t);
    tp.w[2] = cubic_inner(1 - t);
    tp.w[3] = cubic_outer(2 - t);
    for (int k = 0; k < 4; ++k) tp.idx[k] = std::clamp<int64_t>(i0 - 1 + k, 0, in - 1);
  }
  return taps;
}

}  // namespace

// Interpolates along x within each of the four source rows, then along y, as PyTorch's CPU kernel.
Tensor resize_bicubic(const Tensor& x, int64_t oh, int64_t ow) {
  const int64_t C = x.size(0), H = x.size(1), W = x.size(2);
  const std::vector<Taps> ty = axis_taps(H, oh), tx = axis_taps(W, ow);
  Tensor y = Tensor::empty({C, oh, ow}, DType::F32);
  const float* src = x.data<float>();
  float* dst = y.data<float>();
#pragma omp parallel for collapse(2) if (C * oh * ow > 65536)
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < oh; ++i) {
      const Taps& a = ty[static_cast<size_t>(i)];
      const float* plane = src + c * H * W;
      for (int64_t j = 0; j < ow; ++j) {
        const Taps& b = tx[static_cast<size_t>(j)];
        float acc = 0;
        for (int r = 0; r < 4; ++r) {
          const float* row = plane + a.idx[r] * W;
          float v = row[b.idx[0]] * b.w[0] + row[b.idx[1]] * b.w[1] + row[b.idx[2]] * b.w[2] + row[b.idx[3]] * b.w[3];
          acc += v * a.w[r];
        }
        dst[(c * oh + i) * ow + j] = acc;
      }
    }
  return y;
}

}  // namespace x2v::ops::cpu
