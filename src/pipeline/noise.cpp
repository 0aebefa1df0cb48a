#include "pipeline/noise.h"

#include <array>
#include <cmath>

namespace x2v::pipeline {
namespace {

using Block = std::array<uint32_t, 4>;

// Philox4x32 with 10 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3").
Block philox(Block c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = uint64_t{kM0} * c[0];
    const uint64_t p1 = uint64_t{kM1} * c[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c = {hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0};
    k0 += kW0;
    k1 += kW1;
  }
  return c;
}

// 53 random bits from two words, as a double in [0, 1).
double unit53(uint32_t a, uint32_t b) {
  return static_cast<double>((uint64_t{a >> 5} << 26) | (b >> 6)) * (1.0 / 9007199254740992.0);
}

}  // namespace

Tensor gaussian_noise(const Shape& shape, uint64_t seed) {
  Tensor t = Tensor::empty(shape, DType::F32);
  float* p = t.data<float>();
  const int64_t n = t.numel();
  const int64_t pairs = (n + 1) / 2;
  const uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  constexpr double kTwoPi = 6.283185307179586476925286766559;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < pairs; ++i) {
    const Block r = philox({static_cast<uint32_t>(i), static_cast<uint32_t>(static_cast<uint64_t>(i) >> 32), 0x78327631u, 0},
                           k0, k1);
    const double u1 = 1.0 - unit53(r[0], r[1]);  // (0, 1]: log stays finite
    const double u2 = unit53(r[2], r[3]);
    const double rad = std::sqrt(-2.0 * std::log(u1));
    p[2 * i] = static_cast<float>(rad * std::cos(kTwoPi * u2));
    if (2 * i + 1 < n) p[2 * i + 1] = static_cast<float>(rad * std::sin(kTwoPi * u2));
  }
  return t;
}

}  // namespace x2v::pipeline
