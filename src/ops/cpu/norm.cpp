#include <algorithm>
#include <cmath>

#include "ops/cpu/cpu.h"

namespace x2v::ops::cpu {

namespace {
// Mean and 1/sqrt(var + eps) of one row, accumulated in double so the reference's f32 statistics
// are matched to well under the tolerances.
void row_stats(const float* r, int64_t D, float eps, float* mean, float* rstd) {
  double s = 0;
  for (int64_t j = 0; j < D; ++j) s += r[j];
  double m = s / static_cast<double>(D);
  double v = 0;
  for (int64_t j = 0; j < D; ++j) v += (r[j] - m) * (r[j] - m);
  v /= static_cast<double>(D);
  *mean = static_cast<float>(m);
  *rstd = static_cast<float>(1.0 / std::sqrt(v + eps));
}
}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  const int64_t D = x.size(-1), R = x.numel() / D;
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  const float* w = weight.defined() ? weight.data<float>() : nullptr;
  const float* b = bias.defined() ? bias.data<float>() : nullptr;
  float* yp = y.data<float>();
#pragma omp parallel for if (R > 16)
  for (int64_t i = 0; i < R; ++i) {
    float m, rs;
    row_stats(xp + i * D, D, eps, &m, &rs);
    for (int64_t j = 0; j < D; ++j) {
      float v = (xp[i * D + j] - m) * rs;
      if (w) v *= w[j];
      if (b) v += b[j];
      yp[i * D + j] = v;
    }
  }
  return y;
}

Tensor layer_norm_modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, float eps) {
  const int64_t D = x.size(-1), R = x.numel() / D;
  const bool per_row = shift.numel() != D;
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  const float* sh = shift.data<float>();
  const float* sc = scale.data<float>();
  float* yp = y.data<float>();
#pragma omp parallel for if (R > 16)
  for (int64_t i = 0; i < R; ++i) {
    float m, rs;
    row_stats(xp + i * D, D, eps, &m, &rs);
    const float* shr = per_row ? sh + i * D : sh;
    const float* scr = per_row ? sc + i * D : sc;
    for (int64_t j = 0; j < D; ++j) yp[i * D + j] = (xp[i * D + j] - m) * rs * (1.f + scr[j]) + shr[j];
  }
  return y;
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  const int64_t D = x.size(-1), R = x.numel() / D;
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  const float* w = weight.defined() ? weight.data<float>() : nullptr;
  float* yp = y.data<float>();
#pragma omp parallel for if (R > 16)
  for (int64_t i = 0; i < R; ++i) {
    double ss = 0;
    for (int64_t j = 0; j < D; ++j) ss += static_cast<double>(xp[i * D + j]) * xp[i * D + j];
    float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(D) + eps));
    for (int64_t j = 0; j < D; ++j) yp[i * D + j] = xp[i * D + j] * r * (w ? w[j] : 1.f);
  }
  return y;
}

namespace {
// x [C, N]: y = x / max(‖x[:, n]‖, 1e-12) · sqrt(C) · gamma[c], then SiLU when `silu`. The fused form
// performs exactly the float operations of the norm followed by silu, so fusing changes no bit.
Tensor channel_rms(const Tensor& x, const Tensor& gamma, bool with_silu) {
  const int64_t C = x.size(0), N = C ? x.numel() / C : 0;
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  if (!N) return y;
  const float* xp = x.data<float>();
  const float* g = gamma.data<float>();
  float* yp = y.data<float>();
  const float sc = std::sqrt(static_cast<float>(C));
  // Positions in blocks, channels streamed per block: the sums of squares of one block stay in
  // registers/L1 while each channel row passes through once for the sums and once for the output.
  constexpr int64_t kBlock = 256;
#pragma omp parallel for if (N > kBlock)
  for (int64_t n0 = 0; n0 < N; n0 += kBlock) {
    const int64_t n1 = std::min(N, n0 + kBlock);
    double ss[kBlock] = {};
    for (int64_t c = 0; c < C; ++c)
      for (int64_t n = n0; n < n1; ++n) ss[n - n0] += static_cast<double>(xp[c * N + n]) * xp[c * N + n];
    float inv[kBlock];
    for (int64_t n = n0; n < n1; ++n) inv[n - n0] = 1.f / std::max(static_cast<float>(std::sqrt(ss[n - n0])), 1e-12f);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t n = n0; n < n1; ++n) {
        const float v = xp[c * N + n] * inv[n - n0] * sc * g[c];
        yp[c * N + n] = with_silu ? silu(v) : v;
      }
  }
  return y;
}
}  // namespace

Tensor channel_rms_norm(const Tensor& x, const Tensor& gamma) { return channel_rms(x, gamma, false); }
Tensor channel_rms_norm_silu(const Tensor& x, const Tensor& gamma) { return channel_rms(x, gamma, true); }

}  // namespace x2v::ops::cpu
