// Wan's 3D RoPE, and the fused q/k path (RMSNorm over the whole row, then RoPE per head).
// The angles are computed on the host in float64 (as the reference does) into a small cos/sin
// table per grid size, cached on the device; kernels only multiply.
#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "ops/cuda/common.cuh"

namespace x2v::ops::cuda {
namespace {

using x2v::cuda::stream;

// table[pos * D/2 + c] = (cos, sin) of pos·freq_c for the D/2 complex slots c; slot c belongs to the
// t, h or w axis by the split d_t = D − 4·(D/6), d_h = d_w = 2·(D/6). Position-major, so that the
// slots of one token (three runs, one per axis) sit together.
struct RopeTable {
  Tensor cs;  // f32 [P, D/2, 2] on the device, P the longest grid axis
};

const RopeTable& rope_table(int64_t D, int64_t F, int64_t Hg, int64_t Wg) {
  static std::mutex mu;
  static std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, RopeTable> cache;
  std::lock_guard<std::mutex> lk(mu);
  auto key = std::make_tuple(D, F, Hg, Wg);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const int64_t half = D / 2, dh = 2 * (D / 6), dt = D - 2 * dh;
  const int64_t P = std::max<int64_t>({F, Hg, Wg, 1});
  std::vector<float> h(static_cast<size_t>(half * P * 2));
  for (int64_t c = 0; c < half; ++c) {
    int64_t j, d;
    if (c < dt / 2) {
      j = c, d = dt;
    } else if (c < dt / 2 + dh / 2) {
      j = c - dt / 2, d = dh;
    } else {
      j = c - dt / 2 - dh / 2, d = dh;
    }
    const double freq = 1.0 / std::pow(10000.0, static_cast<double>(2 * j) / static_cast<double>(d));
    for (int64_t p = 0; p < P; ++p) {
      const double a = static_cast<double>(p) * freq;
      h[static_cast<size_t>((p * half + c) * 2)] = static_cast<float>(std::cos(a));
      h[static_cast<size_t>((p * half + c) * 2 + 1)] = static_cast<float>(std::sin(a));
    }
  }
  RopeTable t;
  t.cs = Tensor::from_f32(h, {P, half, 2}).to(Device::CUDA);
  return cache.emplace(key, std::move(t)).first->second;
}

// Token t's position on the (F, Hg, Wg) grid; tokens past the grid are not rotated.
struct GridPos {
  int64_t f, h, w;
  bool inside;
};
__device__ __forceinline__ GridPos grid_pos(int64_t t, int64_t F, int64_t Hg, int64_t Wg) {
  if (t >= F * Hg * Wg) return {0, 0, 0, false};
  return {t / (Hg * Wg), (t / Wg) % Hg, t % Wg, true};
}

// The rotation of complex slot c (on the t, h or w axis by dt2, dh2) at grid position g.
__device__ __forceinline__ float2 rot(const float2* cs, int half, const GridPos& g, int c, int dt2, int dh2) {
  if (!g.inside) return make_float2(1.f, 0.f);
  return cs[(c < dt2 ? g.f : c < dt2 + dh2 ? g.h : g.w) * half + c];
}

// x [L, H, D] -> f32 [L, H, D]; one thread per complex pair.
template <class X>
__global__ void k_rope(const X* x, float* y, const float2* cs, int64_t L, int H, int D, int dt2, int dh2,
                       int64_t F, int64_t Hg, int64_t Wg) {
  const int half = D / 2;
  const int64_t n = L * H * half;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i % half);
    const int64_t t = i / (int64_t(H) * half);
    float2 r = rot(cs, half, grid_pos(t, F, Hg, Wg), c, dt2, dh2);
    float a = dev::ld(x, 2 * i), b = dev::ld(x, 2 * i + 1);
    y[2 * i] = a * r.x - b * r.y;
    y[2 * i + 1] = a * r.y + b * r.x;
  }
}

// x [L, H·D]: one block per token. RMS over the full row (WanRMSNorm on dim), round to X's dtype,
// times weight, rotate each head's pairs, write bf16.
template <class X, class W>
__global__ void k_rms_rope(const X* x, const W* w, __nv_bfloat16* y, const float2* cs, int64_t Dm,
                           int D, float eps, int dt2, int dh2, int64_t F, int64_t Hg, int64_t Wg) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x;
  const X* xr = x + t * Dm;
  float q = 0.f;
  for (int64_t j = 2 * threadIdx.x; j < Dm; j += 2 * blockDim.x) {
    float a = dev::ld(xr, j), b = dev::ld(xr, j + 1);
    q += a * a + b * b;
  }
  const float rs = rsqrtf(dev::block_sum(q, red) / static_cast<float>(Dm) + eps);
  const int half = D / 2;
  const GridPos g = grid_pos(t, F, Hg, Wg);
  __nv_bfloat16* yr = y + t * Dm;
  for (int64_t j = 2 * threadIdx.x; j < Dm; j += 2 * blockDim.x) {
    float a = dev::ld(xr, j) * rs, b = dev::ld(xr, j + 1) * rs;
    if (sizeof(X) == 2) a = dev::round_bf16(a), b = dev::round_bf16(b);
    a *= dev::ld(w, j);
    b *= dev::ld(w, j + 1);
    const int c = static_cast<int>((j / 2) % half);
    float2 r = rot(cs, half, g, c, dt2, dh2);
    *reinterpret_cast<__nv_bfloat162*>(yr + j) = __floats2bfloat162_rn(a * r.x - b * r.y, a * r.y + b * r.x);
  }
}

// The same with the row held in registers: kV vectors of 4 per thread, 4-element loads and stores. Needs
// Dm % 4 == 0 and Dm ≤ 16·blockDim. kFixedSlots (2·blockDim a multiple of D/2, as for head dim 128
// and whole warps): every vector of a thread holds the same two complex slots, so the thread loads
// their two rotations once per row instead of once per vector. Loading them per vector held the
// kernel at 58 % of the DRAM bandwidth; once per row it runs at 77 % (14B q/k rows: 337 → 251 µs
// under ncu, run 62).
template <class X, class W, int kV, bool kFixedSlots>
__global__ void k_rms_rope_vec(const X* x, const W* w, __nv_bfloat16* y, const float2* cs, int Dm, int D, float eps,
                               int dt2, int dh2, int64_t F, int64_t Hg, int64_t Wg) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x;
  const X* xr = x + t * Dm;
  float v[kV][4];
  float q = 0.f;
#pragma unroll
  for (int i = 0; i < kV; ++i) {
    const int j = 4 * (threadIdx.x + i * blockDim.x);
    if (j < Dm) {
      dev::ld4(xr, j, v[i]);
      q += v[i][0] * v[i][0] + v[i][1] * v[i][1] + v[i][2] * v[i][2] + v[i][3] * v[i][3];
    }
  }
  const float rs = rsqrtf(dev::block_sum(q, red) / static_cast<float>(Dm) + eps);
  const GridPos g = grid_pos(t, F, Hg, Wg);
  const int half = D / 2;
  float2 fixed[2];
  if constexpr (kFixedSlots) {
    const int c = (2 * threadIdx.x) % half;
    fixed[0] = rot(cs, half, g, c, dt2, dh2);
    fixed[1] = rot(cs, half, g, c + 1, dt2, dh2);
  }
  __nv_bfloat16* yr = y + t * Dm;
#pragma unroll
  for (int i = 0; i < kV; ++i) {
    const int j = 4 * (threadIdx.x + i * blockDim.x);
    if (j >= Dm) continue;
    float wv[4], o[4];
    dev::ld4(w, j, wv);
#pragma unroll
    for (int e = 0; e < 4; e += 2) {
      float a = v[i][e] * rs, b = v[i][e + 1] * rs;
      if (sizeof(X) == 2) a = dev::round_bf16(a), b = dev::round_bf16(b);
      a *= wv[e];
      b *= wv[e + 1];
      const float2 r = kFixedSlots ? fixed[e / 2] : rot(cs, half, g, ((j + e) / 2) % half, dt2, dh2);
      o[e] = a * r.x - b * r.y;
      o[e + 1] = a * r.y + b * r.x;
    }
    dev::st4(yr, j, o);
  }
}

void check_grid(int64_t D, int64_t F, int64_t Hg, int64_t Wg, const char* op) {
  if (D % 2 || D < 6 || F < 0 || Hg < 0 || Wg < 0 || F > 1024 || Hg > 1024 || Wg > 1024)
    fail(ErrorKind::InvalidArgument, op, ": head dim ", D, " and grid ", F, "x", Hg, "x", Wg,
         " are not a valid RoPE layout (even head dim, grid ≤ 1024 per axis)");
}

}  // namespace

Tensor rope_3d(const Tensor& x, int64_t F, int64_t Hg, int64_t Wg) {
  x2v::cuda::require_float(x, "rope_3d", "x");
  if (x.dim() != 3) fail(ErrorKind::InvalidArgument, "rope_3d: x ", x.desc(), " must be [L, H, D]");
  const int64_t L = x.size(0), H = x.size(1), D = x.size(2);
  check_grid(D, F, Hg, Wg, "rope_3d");
  Tensor y = Tensor::empty(x.shape(), DType::F32, Device::CUDA);
  if (!y.numel()) return y;
  const RopeTable& tb = rope_table(D, F, Hg, Wg);
  const int dh2 = static_cast<int>(D / 6), dt2 = static_cast<int>(D / 2 - 2 * (D / 6));
  X2V_DISPATCH_FLOAT(x.dtype(), X, {
    k_rope<<<x2v::cuda::grid_for(y.numel() / 2, 256), 256, 0, stream()>>>(
        static_cast<const X*>(x.raw()), static_cast<float*>(y.raw()), static_cast<const float2*>(tb.cs.raw()), L,
        static_cast<int>(H), static_cast<int>(D), dt2, dh2, F, Hg, Wg);
  });
  X2V_LAUNCH_CHECK();
  return y;
}

Tensor rms_norm_rope(const Tensor& x, const Tensor& weight, float eps, int64_t heads, int64_t F, int64_t Hg,
                     int64_t Wg) {
  x2v::cuda::require_float(x, "rms_norm_rope", "x");
  x2v::cuda::require_float(weight, "rms_norm_rope", "weight");
  const int64_t Dm = x.dim() ? x.size(-1) : 0;
  if (x.dim() != 2 || heads <= 0 || Dm % heads || weight.numel() != Dm)
    fail(ErrorKind::InvalidArgument, "rms_norm_rope: x ", x.desc(), ", weight ", weight.desc(), ", ", heads,
         " heads: expected x [L, H·D] and weight [H·D]");
  const int64_t L = x.size(0), D = Dm / heads;
  check_grid(D, F, Hg, Wg, "rms_norm_rope");
  Tensor y = Tensor::empty({L, heads, D}, DType::BF16, Device::CUDA);
  if (!y.numel()) return y;
  const RopeTable& tb = rope_table(D, F, Hg, Wg);
  const int dh2 = static_cast<int>(D / 6), dt2 = static_cast<int>(D / 2 - 2 * (D / 6));
  constexpr int kV = 4;
  const int64_t vecs = Dm / 4;
  if (Dm % 4 == 0 && vecs <= kV * 1024 && dev::vec4_aligned(x.raw()) && dev::vec4_aligned(weight.raw())) {
    const int threads = static_cast<int>(std::max<int64_t>(32, ((vecs + kV - 1) / kV + 31) / 32 * 32));
    const bool fixed_slots = (2 * threads) % (D / 2) == 0;
    X2V_DISPATCH_FLOAT(x.dtype(), X, X2V_DISPATCH_FLOAT(weight.dtype(), W, {
      auto kernel = fixed_slots ? k_rms_rope_vec<X, W, kV, true> : k_rms_rope_vec<X, W, kV, false>;
      kernel<<<static_cast<unsigned>(L), threads, 0, stream()>>>(
          static_cast<const X*>(x.raw()), static_cast<const W*>(weight.raw()), static_cast<__nv_bfloat16*>(y.raw()),
          static_cast<const float2*>(tb.cs.raw()), static_cast<int>(Dm), static_cast<int>(D), eps, dt2, dh2, F, Hg,
          Wg);
    }));
    X2V_LAUNCH_CHECK();
    return y;
  }
  X2V_DISPATCH_FLOAT(x.dtype(), X, X2V_DISPATCH_FLOAT(weight.dtype(), W, {
    k_rms_rope<<<static_cast<unsigned>(L), 256, 0, stream()>>>(
        static_cast<const X*>(x.raw()), static_cast<const W*>(weight.raw()), static_cast<__nv_bfloat16*>(y.raw()),
        static_cast<const float2*>(tb.cs.raw()), Dm, static_cast<int>(D), eps, dt2, dh2, F, Hg, Wg);
  }));
  X2V_LAUNCH_CHECK();
  return y;
}

}  // namespace x2v::ops::cuda
