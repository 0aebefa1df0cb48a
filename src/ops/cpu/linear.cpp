#include <cblas.h>

#include "ops/cpu/cpu.h"

namespace x2v::ops::cpu {

namespace {
const float* f32_view(const Tensor& t, Tensor& keep) {
  keep = t.dtype() == DType::F32 ? t : t.to(DType::F32);
  return keep.data<float>();
}
}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, Act act) {
  const int64_t K = x.size(-1), N = w.size(0), M = x.numel() / K;
  Shape os = x.shape();
  os.back() = N;
  Tensor y = Tensor::empty(os, DType::F32);
  Tensor xk, wk, bk;
  const float* xp = f32_view(x, xk);
  const float* wp = f32_view(w, wk);
  float* yp = y.data<float>();
  if (M > 0 && N > 0) {
    if (K == 0) {
      y.fill_zero();
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N),
                  static_cast<int>(K), 1.f, xp, static_cast<int>(K), wp, static_cast<int>(K), 0.f, yp,
                  static_cast<int>(N));
    }
  }
  const float* bp = bias.defined() ? f32_view(bias, bk) : nullptr;
  if (bp || act != Act::None) {
#pragma omp parallel for if (M * N > 65536)
    for (int64_t i = 0; i < M; ++i) {
      float* row = yp + i * N;
      for (int64_t j = 0; j < N; ++j) {
        float v = row[j] + (bp ? bp[j] : 0.f);
        switch (act) {
          case Act::None: break;
          case Act::SiLU: v = silu(v); break;
          case Act::GeluTanh: v = gelu_tanh(v); break;
          case Act::GeluErf: v = gelu_erf(v); break;
        }
        row[j] = v;
      }
    }
  }
  return y;
}

Tensor matmul_nt(const Tensor& a, const Tensor& b) {
  const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(1);
  Tensor c = Tensor::empty({B, M, N}, DType::F32);
  Tensor ak, bk;
  const float* ap = f32_view(a, ak);
  const float* bp = f32_view(b, bk);
  for (int64_t i = 0; i < B; ++i)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N),
                static_cast<int>(K), 1.f, ap + i * M * K, static_cast<int>(K), bp + i * N * K,
                static_cast<int>(K), 0.f, c.data<float>() + i * M * N, static_cast<int>(N));
  return c;
}

}  // namespace x2v::ops::cpu
