#include <cmath>
#include <vector>

#include "ops/cpu/cpu.h"

namespace x2v::ops::cpu {

Tensor rope_3d(const Tensor& x, int64_t F, int64_t Hg, int64_t Wg) {
  const int64_t L = x.size(0), H = x.size(1), D = x.size(2), C = D / 2;
  // Complex slots per axis: the reference splits C = D/2 as [C − 2⌊C/3⌋, ⌊C/3⌋, ⌊C/3⌋], each with
  // its own frequency base over the axis' real sub-dimension 2·slots.
  const int64_t ch = C / 3, ct = C - 2 * ch;
  std::vector<double> inv(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    int64_t j = c < ct ? c : (c < ct + ch ? c - ct : c - ct - ch);
    int64_t slots = c < ct ? ct : ch;
    inv[static_cast<size_t>(c)] = 1.0 / std::pow(10000.0, static_cast<double>(2 * j) / static_cast<double>(2 * slots));
  }
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const int64_t real = F * Hg * Wg;
#pragma omp parallel for if (L > 64)
  for (int64_t t = 0; t < L; ++t) {
    const float* xr = xp + t * H * D;
    float* yr = yp + t * H * D;
    if (t >= real) {
      for (int64_t i = 0; i < H * D; ++i) yr[i] = xr[i];
      continue;
    }
    const int64_t f = t / (Hg * Wg), hh = (t / Wg) % Hg, ww = t % Wg;
    for (int64_t c = 0; c < C; ++c) {
      const int64_t pos = c < ct ? f : (c < ct + ch ? hh : ww);
      const double ang = static_cast<double>(pos) * inv[static_cast<size_t>(c)];
      const double cs = std::cos(ang), sn = std::sin(ang);
      for (int64_t h = 0; h < H; ++h) {
        const double a = xr[h * D + 2 * c], b = xr[h * D + 2 * c + 1];
        yr[h * D + 2 * c] = static_cast<float>(a * cs - b * sn);
        yr[h * D + 2 * c + 1] = static_cast<float>(a * sn + b * cs);
      }
    }
  }
  return y;
}

}  // namespace x2v::ops::cpu
