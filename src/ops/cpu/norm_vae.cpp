// CPU reference of the fused VAE norm → SiLU. It performs exactly the float operations of
// channel_rms_norm followed by silu (ops/cpu/norm.cpp, ops/cpu/elementwise.cpp), so fusing changes
// no bit of the CPU results; it only saves the intermediate tensor and one pass.
#include <algorithm>
#include <cmath>

#include "ops/cpu/cpu.h"

namespace x2v::ops::cpu {

Tensor channel_rms_norm_silu(const Tensor& x, const Tensor& gamma) {
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
      for (int64_t n = n0; n < n1; ++n) yp[c * N + n] = silu(xp[c * N + n] * inv[n - n0] * sc * g[c]);
  }
  return y;
}

}  // namespace x2v::ops::cpu
