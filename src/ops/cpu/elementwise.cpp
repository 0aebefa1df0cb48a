#include <algorithm>
#include <cmath>

#include "ops/cpu/cpu.h"

namespace x2v::ops::cpu {

float silu(float x) { return x / (1.f + std::exp(-x)); }
float gelu_tanh(float x) {
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * x * (1.f + std::tanh(k * (x + 0.044715f * x * x * x)));
}
float gelu_erf(float x) { return 0.5f * x * (1.f + std::erf(x * 0.7071067811865476f)); }

Tensor binary(const Tensor& a, const Tensor& b, Binary op) {
  Tensor y = Tensor::empty(a.shape(), DType::F32);
  const int64_t n = a.numel(), m = b.numel();
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* yp = y.data<float>();
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    float bv = bp[m == n ? i : i % m];
    yp[i] = op == Binary::Add ? ap[i] + bv : ap[i] * bv;
  }
  return y;
}

Tensor axpby(const Tensor& a, float alpha, const Tensor& b, float beta) {
  Tensor y = Tensor::empty(a.shape(), DType::F32);
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* yp = y.data<float>();
  const int64_t n = a.numel();
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) yp[i] = alpha * ap[i] + beta * bp[i];
  return y;
}

Tensor unary(const Tensor& x, Unary op) {
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for if (n > 16384)
  for (int64_t i = 0; i < n; ++i)
    yp[i] = op == Unary::SiLU ? silu(xp[i]) : op == Unary::GeluTanh ? gelu_tanh(xp[i]) : gelu_erf(xp[i]);
  return y;
}

Tensor clamp(const Tensor& x, float lo, float hi) {
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) yp[i] = std::min(hi, std::max(lo, xp[i]));
  return y;
}

void gated_add_(Tensor& x, const Tensor& y, const Tensor& gate) {
  const int64_t n = x.numel(), g = gate.numel();
  float* xp = x.data<float>();
  const float* yp = y.data<float>();
  const float* gp = gate.data<float>();
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) xp[i] += yp[i] * gp[g == n ? i : i % g];
}

void add_(Tensor& x, const Tensor& y) {
  float* xp = x.data<float>();
  const float* yp = y.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) xp[i] += yp[i];
}

}  // namespace x2v::ops::cpu
