#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/cpu/cpu.h"

namespace x2v::ops::cpu {

// Per head and block of query rows: S = scale·Q·Kᵀ (+bias, mask), softmax, O = S·V. Heads are
// strided inside [L, H, D], which BLAS handles through the leading dimension H·D. Query rows go in
// blocks so the logits buffer stays small at long sequence lengths.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& bias,
                 const Tensor& key_mask) {
  const int64_t Lq = q.size(0), H = q.size(1), D = q.size(2), Lk = k.size(0), Dv = v.size(2);
  Tensor out = Tensor::empty({Lq, H, Dv}, DType::F32);
  const float* qp = q.data<float>();
  const float* kp = k.data<float>();
  const float* vp = v.data<float>();
  const float* bp = bias.defined() ? bias.data<float>() : nullptr;
  std::vector<uint8_t> keep(static_cast<size_t>(Lk), 1);
  if (key_mask.defined()) {
    std::vector<float> m = key_mask.to_vector();
    for (int64_t j = 0; j < Lk; ++j) keep[static_cast<size_t>(j)] = m[static_cast<size_t>(j)] != 0.f;
  }
  float* op = out.data<float>();
  constexpr int64_t kRows = 256;
  std::vector<float> S(static_cast<size_t>(std::min(Lq, kRows) * Lk));
  const float lowest = std::numeric_limits<float>::lowest();
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t r0 = 0; r0 < Lq; r0 += kRows) {
      const int64_t rows = std::min(kRows, Lq - r0);
      if (Lk > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(Lk),
                    static_cast<int>(D), scale, qp + (r0 * H + h) * D, static_cast<int>(H * D), kp + h * D,
                    static_cast<int>(H * D), 0.f, S.data(), static_cast<int>(Lk));
#pragma omp parallel for if (rows * Lk > 16384)
      for (int64_t i = 0; i < rows; ++i) {
        float* s = S.data() + i * Lk;
        if (bp) {
          const float* b = bp + (h * Lq + r0 + i) * Lk;
          for (int64_t j = 0; j < Lk; ++j) s[j] += b[j];
        }
        float mx = lowest;
        for (int64_t j = 0; j < Lk; ++j) {
          if (!keep[static_cast<size_t>(j)]) s[j] = lowest;
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < Lk; ++j) {
          s[j] = std::exp(s[j] - mx);
          sum += s[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t j = 0; j < Lk; ++j) s[j] *= inv;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(Dv),
                  static_cast<int>(Lk), 1.f, S.data(), static_cast<int>(Lk), vp + h * Dv, static_cast<int>(H * Dv),
                  0.f, op + (r0 * H + h) * Dv, static_cast<int>(H * Dv));
    }
  }
  return out;
}

}  // namespace x2v::ops::cpu
