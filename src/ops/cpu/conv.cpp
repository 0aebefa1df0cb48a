// Convolutions on the CPU: im2col + OpenBLAS sgemm, one output frame (and a band of output rows) at a
// time, so the column buffer stays bounded whatever the frame size (a 96-channel 3×3×3 conv over a
// 480×832 frame would need 4 GiB of columns at once).
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/cpu/cpu.h"

namespace x2v::ops::cpu {

namespace {

constexpr size_t kColumnBudget = size_t{32} << 20;  // bytes of im2col buffer per band

struct Geometry {
  int64_t Cin, T, H, W, Cout, kt, kh, kw, To, Ho, Wo;
  std::array<int, 3> stride;
  std::array<int, 6> pad;
};

// Columns for output frame `to`, output rows [oy0, oy1): col[k][(oy-oy0)·Wo + ox] with
// k = ((ci·kt + dt)·kh + dy)·kw + dx — the order of the weight's trailing dims, so the weight
// [Cout, Cin·kt·kh·kw] is the left sgemm operand as stored. Out-of-range taps read zero padding.
void im2col(const float* x, const Geometry& g, int64_t to, int64_t oy0, int64_t oy1, float* col) {
  const int64_t K = g.Cin * g.kt * g.kh * g.kw, N = (oy1 - oy0) * g.Wo;
  const int st = g.stride[0], sh = g.stride[1], sw = g.stride[2];
#pragma omp parallel for schedule(static) if (K * N > (1 << 20))
  for (int64_t k = 0; k < K; ++k) {
    const int64_t dx = k % g.kw, dy = (k / g.kw) % g.kh, dt = (k / (g.kw * g.kh)) % g.kt, ci = k / (g.kw * g.kh * g.kt);
    float* row = col + k * N;
    const int64_t ti = to * st - g.pad[0] + dt;
    if (ti < 0 || ti >= g.T) {
      std::fill(row, row + N, 0.f);
      continue;
    }
    const float* plane = x + (ci * g.T + ti) * g.H * g.W;
    // Output columns whose input column ix = ox·sw − pad_left + dx lies inside [0, W).
    const int64_t off = dx - g.pad[4];
    const int64_t ox_lo = std::clamp<int64_t>(off >= 0 ? 0 : (-off + sw - 1) / sw, 0, g.Wo);
    const int64_t ox_hi = std::clamp<int64_t>(g.W - off > 0 ? (g.W - off + sw - 1) / sw : 0, ox_lo, g.Wo);
    for (int64_t oy = oy0; oy < oy1; ++oy) {
      float* out = row + (oy - oy0) * g.Wo;
      const int64_t iy = oy * sh - g.pad[2] + dy;
      if (iy < 0 || iy >= g.H) {
        std::fill(out, out + g.Wo, 0.f);
        continue;
      }
      const float* in = plane + iy * g.W;
      std::fill(out, out + ox_lo, 0.f);
      if (sw == 1) {
        if (ox_hi > ox_lo) std::memcpy(out + ox_lo, in + ox_lo + off, static_cast<size_t>(ox_hi - ox_lo) * sizeof(float));
      } else {
        for (int64_t ox = ox_lo; ox < ox_hi; ++ox) out[ox] = in[ox * sw + off];
      }
      std::fill(out + ox_hi, out + g.Wo, 0.f);
    }
  }
}

void fill_bias(float* y, const float* bias, int64_t Cout, int64_t per_channel) {
#pragma omp parallel for if (Cout * per_channel > (1 << 20))
  for (int64_t c = 0; c < Cout; ++c) std::fill(y + c * per_channel, y + (c + 1) * per_channel, bias ? bias[c] : 0.f);
}

}  // namespace

Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 3> stride, std::array<int, 6> pad) {
  Geometry g{};
  g.Cin = x.size(0), g.T = x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.Cout = w.size(0), g.kt = w.size(2), g.kh = w.size(3), g.kw = w.size(4);
  g.stride = stride, g.pad = pad;
  g.To = (g.T + pad[0] + pad[1] - g.kt) / stride[0] + 1;
  g.Ho = (g.H + pad[2] + pad[3] - g.kh) / stride[1] + 1;
  g.Wo = (g.W + pad[4] + pad[5] - g.kw) / stride[2] + 1;
  Tensor y = Tensor::empty({g.Cout, g.To, g.Ho, g.Wo}, DType::F32);
  const int64_t plane = g.Ho * g.Wo, per_channel = g.To * plane;
  float* yp = y.data<float>();
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  fill_bias(yp, bias.defined() ? bias.data<float>() : nullptr, g.Cout, per_channel);
  if (y.numel() == 0 || g.Cin == 0) return y;

  const bool pointwise = g.kt == 1 && g.kh == 1 && g.kw == 1 && stride == std::array<int, 3>{1, 1, 1} &&
                         pad == std::array<int, 6>{};
  if (pointwise) {  // the input already is the column matrix
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(g.Cout), static_cast<int>(per_channel),
                static_cast<int>(g.Cin), 1.f, wp, static_cast<int>(g.Cin), xp, static_cast<int>(per_channel), 1.f, yp,
                static_cast<int>(per_channel));
    return y;
  }

  const int64_t K = g.Cin * g.kt * g.kh * g.kw;
  const int64_t band = std::clamp<int64_t>(static_cast<int64_t>(kColumnBudget / sizeof(float)) / (K * g.Wo), 1, g.Ho);
  // Reused across calls: a fresh 32 MiB buffer per conv would be page-faulted in every time.
  thread_local std::vector<float> col;
  if (col.size() < static_cast<size_t>(K * band * g.Wo)) col.resize(static_cast<size_t>(K * band * g.Wo));
  for (int64_t to = 0; to < g.To; ++to) {
    for (int64_t oy0 = 0; oy0 < g.Ho; oy0 += band) {
      const int64_t oy1 = std::min(g.Ho, oy0 + band), N = (oy1 - oy0) * g.Wo;
      im2col(xp, g, to, oy0, oy1, col.data());
      // Row co of the result lands at y[co, to, oy0:oy1, :]: rows are per_channel apart.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(g.Cout), static_cast<int>(N),
                  static_cast<int>(K), 1.f, wp, static_cast<int>(K), col.data(), static_cast<int>(N), 1.f,
                  yp + to * plane + oy0 * g.Wo, static_cast<int>(per_channel));
    }
  }
  return y;
}

Tensor upsample_nearest2x(const Tensor& x) {
  const int64_t H = x.size(-2), W = x.size(-1), planes = x.numel() / std::max<int64_t>(H * W, 1);
  Shape os = x.shape();
  os[os.size() - 2] = 2 * H;
  os.back() = 2 * W;
  Tensor y = Tensor::empty(os, DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
#pragma omp parallel for if (y.numel() > (1 << 20))
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < H; ++i) {
      const float* in = xp + (p * H + i) * W;
      float* out = yp + (p * 2 * H + 2 * i) * 2 * W;
      for (int64_t j = 0; j < W; ++j) out[2 * j] = out[2 * j + 1] = in[j];
      std::memcpy(out + 2 * W, out, static_cast<size_t>(2 * W) * sizeof(float));
    }
  return y;
}

}  // namespace x2v::ops::cpu
