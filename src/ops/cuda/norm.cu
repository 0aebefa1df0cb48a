// Row norms: LayerNorm, the fused LayerNorm + modulation of every DiT block, RMSNorm, and the VAE's
// channel RMS norm. One block per row, read from global memory once: the general kernels stage the row
// in shared memory as f32, the register-row kernel (the DiT's rows) holds it in registers; both take
// exact two-pass statistics (mean, then squared deviations).
#include <algorithm>
#include <initializer_list>

#include "ops/cuda/common.cuh"

namespace x2v::ops::cuda {
namespace {

using x2v::cuda::stream;
constexpr int kThreads = 256;

// mode 0: LayerNorm (optional affine w, b); 1: LN·(1 + scale) + shift; 2: RMSNorm (round the
// normalized value to X's dtype before the weight, as WanRMSNorm/T5LayerNorm do).
template <class X, class P, class O>
__global__ void k_row_norm(const X* x, const P* w, const P* b, O* y, int64_t D, float eps, int mode,
                           bool per_row_params) {
  extern __shared__ float row[];
  __shared__ float red[32];
  const int64_t r = blockIdx.x;
  const X* xr = x + r * D;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    float v = dev::ld(xr, j);
    row[j] = v;
    s += v;
  }
  float mean = 0.f, rs;
  if (mode != 2) {
    mean = dev::block_sum(s, red) / static_cast<float>(D);
    float q = 0.f;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
      float d = row[j] - mean;
      q += d * d;
    }
    rs = rsqrtf(dev::block_sum(q, red) / static_cast<float>(D) + eps);
  } else {
    __syncthreads();
    float q = 0.f;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) q += row[j] * row[j];
    rs = rsqrtf(dev::block_sum(q, red) / static_cast<float>(D) + eps);
  }
  const int64_t po = per_row_params ? r * D : 0;
  O* yr = y + r * D;
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    float v = (row[j] - mean) * rs;
    if (mode == 0) {
      if (w) v *= dev::ld(w, j);
      if (b) v += dev::ld(b, j);
    } else if (mode == 1) {
      v = v * (1.f + dev::ld(b, po + j)) + dev::ld(w, po + j);  // w = shift, b = scale
    } else {
      if (sizeof(X) == 2) v = dev::round_bf16(v);
      if (w) v *= dev::ld(w, j);
    }
    dev::st(yr, j, v);
  }
}

// x [C, N]: y = x / max(‖x[:, n]‖, 1e-12) · sqrt(C) · gamma[c]. Threads run along n (contiguous),
// so each pass over c reads coalesced rows.
template <class X, class G>
__global__ void k_channel_rms(const X* x, const G* g, X* y, int64_t C, int64_t N, bool silu) {
  for (int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; n < N; n += int64_t(gridDim.x) * blockDim.x) {
    float ss = 0.f;
    for (int64_t c = 0; c < C; ++c) {
      float v = dev::ld(x, c * N + n);
      ss += v * v;
    }
    float inv = sqrtf(static_cast<float>(C)) / fmaxf(sqrtf(ss), 1e-12f);
    for (int64_t c = 0; c < C; ++c) {
      float v = dev::ld(x, c * N + n) * inv * dev::ld(g, c);
      dev::st(y, c * N + n, silu ? dev::silu(v) : v);
    }
  }
}

// The residual terms a fused norm adds to its row before normalizing: v = x + y·g + y2·g2 (no y2: one
// term; no g: 1; each g one row [D] or one row per token), written back to x if `write`.
template <class Y, class G>
struct Terms {
  const Y* y = nullptr;
  const G* g = nullptr;
  bool g_rows = false;
  const Y* y2 = nullptr;
  const G* g2 = nullptr;
  bool g2_rows = false;
  bool write = false;
};

// The residual update fused with the norm that follows it, then LayerNorm of the updated row (mode 0:
// affine w, b; mode 1: ·(1 + scale) + shift). Saves a full read of the f32 residual stream per fusion.
template <class Y, class G, class P, class O>
__global__ void k_add_row_norm(float* x, Terms<Y, G> t, const P* w, const P* b, O* out, int64_t D, float eps, int mode,
                               bool per_row_params) {
  extern __shared__ float row[];
  __shared__ float red[32];
  const int64_t r = blockIdx.x;
  float* xr = x + r * D;
  const int64_t go = t.g_rows ? r * D : 0, go2 = t.g2_rows ? r * D : 0;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    float v = xr[j] + dev::ld(t.y, r * D + j) * (t.g ? dev::ld(t.g, go + j) : 1.f);
    if (t.y2) v += dev::ld(t.y2, r * D + j) * (t.g2 ? dev::ld(t.g2, go2 + j) : 1.f);
    if (t.write) xr[j] = v;
    row[j] = v;
    s += v;
  }
  const float mean = dev::block_sum(s, red) / static_cast<float>(D);
  float q = 0.f;
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    float d = row[j] - mean;
    q += d * d;
  }
  const float rs = rsqrtf(dev::block_sum(q, red) / static_cast<float>(D) + eps);
  const int64_t po = per_row_params ? r * D : 0;
  O* orow = out + r * D;
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    float v = (row[j] - mean) * rs;
    if (mode == 0) {
      if (w) v *= dev::ld(w, j);
      if (b) v += dev::ld(b, j);
    } else {
      v = v * (1.f + dev::ld(b, po + j)) + dev::ld(w, po + j);
    }
    dev::st(orow, j, v);
  }
}

// v[e] += y[j + e]·g[j + e] for one vector of four (g null: 1).
template <class Y, class G>
__device__ __forceinline__ void add_term4(float (&v)[4], const Y* y, const G* g, int64_t j, int64_t gj) {
  float yv[4], gv[4] = {1.f, 1.f, 1.f, 1.f};
  dev::ld4(y, j, yv);
  if (g) dev::ld4(g, gj, gv);
#pragma unroll
  for (int e = 0; e < 4; ++e) v[e] += yv[e] * gv[e];
}

// The register-row form of both kernels above: the row is held in registers (kV vectors of 4 per
// thread) and moved with 4-element accesses. The DiT's rows of 1536..5120 are memory-bound, and scalar
// 2- and 4-byte accesses left a quarter to a half of the bandwidth unused. With terms, x is the f32
// residual stream (k_add_row_norm); without, x is only read (k_row_norm). Needs D % 4 == 0 and
// D ≤ 16·blockDim; the statistics are the same two passes.
template <class X, class Y, class G, class P, class O, int kV>
__global__ void k_row_norm_vec(X* x, Terms<Y, G> t, const P* w, const P* b, O* out, int D, float eps, int mode,
                               bool per_row_params) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x;
  X* xr = x + r * D;
  const int64_t go = t.g_rows ? r * D : 0, go2 = t.g2_rows ? r * D : 0, po = per_row_params ? r * D : 0;
  float v[kV][4];
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < kV; ++i) {
    const int j = 4 * (threadIdx.x + i * blockDim.x);
    if (j >= D) continue;
    dev::ld4(xr, j, v[i]);
    if (t.y) {
      add_term4(v[i], t.y + r * D, t.g, j, go + j);
      if (t.y2) add_term4(v[i], t.y2 + r * D, t.g2, j, go2 + j);
      if (t.write) dev::st4(xr, j, v[i]);
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) s += v[i][e];
  }
  const float mean = mode == 2 ? 0.f : dev::block_sum(s, red) / static_cast<float>(D);
  float q = 0.f;
#pragma unroll
  for (int i = 0; i < kV; ++i)
    if (4 * (threadIdx.x + i * blockDim.x) < D)
#pragma unroll
      for (int e = 0; e < 4; ++e) q += (v[i][e] - mean) * (v[i][e] - mean);
  const float rs = rsqrtf(dev::block_sum(q, red) / static_cast<float>(D) + eps);
  O* orow = out + r * D;
#pragma unroll
  for (int i = 0; i < kV; ++i) {
    const int j = 4 * (threadIdx.x + i * blockDim.x);
    if (j >= D) continue;
    float wv[4] = {1.f, 1.f, 1.f, 1.f}, bv[4] = {0.f, 0.f, 0.f, 0.f}, o[4];
    if (w) dev::ld4(w, po + j, wv);
    if (b) dev::ld4(b, po + j, bv);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float n = (v[i][e] - mean) * rs;
      if (mode == 0)
        o[e] = n * wv[e] + bv[e];
      else if (mode == 1)
        o[e] = n * (1.f + bv[e]) + wv[e];
      else
        o[e] = (sizeof(X) == 2 ? dev::round_bf16(n) : n) * wv[e];
    }
    dev::st4(orow, j, o);
  }
}

constexpr int kVecPerThread = 4;

// Whether the register-row kernel takes rows of D over these tensors, and its block size.
bool vec_rows(int64_t D, std::initializer_list<const Tensor*> ts) {
  if (D % 4 != 0 || D / 4 > kVecPerThread * 1024) return false;
  for (const Tensor* t : ts)
    if (t->defined() && !dev::vec4_aligned(t->raw())) return false;
  return true;
}
unsigned vec_threads(int64_t D) {
  return static_cast<unsigned>(std::max<int64_t>(32, ((D / 4 + kVecPerThread - 1) / kVecPerThread + 31) / 32 * 32));
}

size_t smem_for(int64_t D, const void* kernel) {
  size_t bytes = static_cast<size_t>(D) * 4;
  if (bytes > 48 * 1024) {
    if (bytes > 200 * 1024)
      fail(ErrorKind::Unsupported, "CUDA norm: rows of ", D, " elements are longer than this kernel stages");
    X2V_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  }
  return bytes;
}

// The norm's weight/bias (mode 0) or shift/scale (mode 1) against x [.., D]: one dtype, each a row
// [D] or (mode 1) one row per token. Returns whether they are per token.
bool check_norm_params(const Tensor& x, const Tensor& w, const Tensor& b, int mode, const char* op) {
  const int64_t D = x.size(-1);
  const Tensor& pt = w.defined() ? w : b;
  bool per_row = false;
  for (const Tensor* t : {&w, &b}) {
    if (!t->defined()) continue;
    x2v::cuda::require_float(*t, op, "parameter");
    if (t->dtype() != pt.dtype())
      fail(ErrorKind::InvalidArgument, op, ": parameters ", w.desc(), " and ", b.desc(), " differ in dtype");
    if (mode == 1 && t->numel() == x.numel() && t->numel() != D)
      per_row = true;
    else if (t->numel() != D)
      fail(ErrorKind::InvalidArgument, op, ": parameter ", t->desc(), " does not match x ", x.desc());
  }
  if (mode == 1 && (!w.defined() || !b.defined() || w.numel() != b.numel()))
    fail(ErrorKind::InvalidArgument, op, ": shift and scale must both be given with one shape");
  return per_row;
}

Tensor row_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps, int mode, DType out,
                const char* op) {
  x2v::cuda::require_float(x, op, "x");
  if (x.dim() < 1) fail(ErrorKind::InvalidArgument, op, ": x ", x.desc(), " has no last dim");
  const int64_t D = x.size(-1), R = D ? x.numel() / D : 0;
  const bool per_row = check_norm_params(x, w, b, mode, op);
  const Tensor& pt = w.defined() ? w : b;
  Tensor y = Tensor::empty(x.shape(), out, Device::CUDA);
  if (!R || !D) return y;
  const DType ptype = pt.defined() ? pt.dtype() : DType::F32;
  if (vec_rows(D, {&x, &w, &b, &y})) {
    X2V_DISPATCH_FLOAT(x.dtype(), X, X2V_DISPATCH_FLOAT(ptype, P, X2V_DISPATCH_FLOAT(out, O, {
      k_row_norm_vec<X, float, float, P, O, kVecPerThread><<<static_cast<unsigned>(R), vec_threads(D), 0, stream()>>>(
          static_cast<X*>(const_cast<void*>(x.raw())), Terms<float, float>{},
          w.defined() ? static_cast<const P*>(w.raw()) : nullptr, b.defined() ? static_cast<const P*>(b.raw()) : nullptr,
          static_cast<O*>(y.raw()), static_cast<int>(D), eps, mode, per_row);
    })));
    X2V_LAUNCH_CHECK();
    return y;
  }
  X2V_DISPATCH_FLOAT(x.dtype(), X, X2V_DISPATCH_FLOAT(ptype, P, X2V_DISPATCH_FLOAT(out, O, {
    auto kern = k_row_norm<X, P, O>;
    size_t sm = smem_for(D, reinterpret_cast<const void*>(kern));
    kern<<<static_cast<unsigned>(R), kThreads, sm, stream()>>>(
        static_cast<const X*>(x.raw()), w.defined() ? static_cast<const P*>(w.raw()) : nullptr,
        b.defined() ? static_cast<const P*>(b.raw()) : nullptr, static_cast<O*>(y.raw()), D, eps, mode, per_row);
  })));
  X2V_LAUNCH_CHECK();
  return y;
}

// The gate g of a residual term for x: whether it is one row per token (else one row [D]).
bool gate_rows(const Tensor& x, const Tensor& g, const char* op) {
  if (!g.defined()) return false;
  x2v::cuda::require_float(g, op, "gate");
  if (g.numel() == x.numel() && x.numel() != x.size(-1)) return true;
  if (g.numel() != x.size(-1)) fail(ErrorKind::InvalidArgument, op, ": gate ", g.desc(), " for x ", x.desc());
  return false;
}

// v = x + y·gate + y2·gate2 (y2 optional), x = v if `write`, then the norm of v (mode 0 / 1 as above).
Tensor add_row_norm(const Tensor& x, const Tensor& y, const Tensor& gate, const Tensor& y2, const Tensor& gate2,
                    bool write, const Tensor& w, const Tensor& b, float eps, int mode, DType out, const char* op) {
  x2v::cuda::require_device(x, op, "x");
  if (x.dtype() != DType::F32) fail(ErrorKind::Unsupported, op, ": the residual x ", x.desc(), " must be f32");
  x2v::cuda::require_float(y, op, "y");
  if (y.numel() != x.numel()) fail(ErrorKind::InvalidArgument, op, ": y ", y.desc(), " does not match x ", x.desc());
  const bool g_rows = gate_rows(x, gate, op);
  // The second term in the first's dtypes, so that one kernel instantiation takes both.
  Tensor y2c, g2c;
  if (y2.defined()) {
    x2v::cuda::require_float(y2, op, "y2");
    if (y2.numel() != x.numel())
      fail(ErrorKind::InvalidArgument, op, ": y2 ", y2.desc(), " does not match x ", x.desc());
    y2c = y2.dtype() == y.dtype() ? y2 : x2v::cuda::convert(y2, y.dtype());
  }
  const bool g2_rows = y2.defined() && gate_rows(x, gate2, op);
  const DType gtype = gate.defined() ? gate.dtype() : gate2.defined() ? gate2.dtype() : DType::F32;
  if (y2.defined() && gate2.defined()) g2c = gate2.dtype() == gtype ? gate2 : x2v::cuda::convert(gate2, gtype);
  const bool per_row = check_norm_params(x, w, b, mode, op);
  const Tensor& pt = w.defined() ? w : b;
  Tensor o = Tensor::empty(x.shape(), out, Device::CUDA);
  const int64_t D = x.size(-1), R = D ? x.numel() / D : 0;
  if (!R || !D) return o;
  const DType ptype = pt.defined() ? pt.dtype() : DType::F32;
  float* xp = static_cast<float*>(const_cast<void*>(x.raw()));
  X2V_DISPATCH_FLOAT(y.dtype(), Y, X2V_DISPATCH_FLOAT(gtype, G, X2V_DISPATCH_FLOAT(ptype, P, X2V_DISPATCH_FLOAT(out, O, {
    Terms<Y, G> t;
    t.y = static_cast<const Y*>(y.raw());
    t.g = gate.defined() ? static_cast<const G*>(gate.raw()) : nullptr;
    t.g_rows = g_rows;
    t.y2 = y2c.defined() ? static_cast<const Y*>(y2c.raw()) : nullptr;
    t.g2 = g2c.defined() ? static_cast<const G*>(g2c.raw()) : nullptr;
    t.g2_rows = g2_rows;
    t.write = write;
    const P* wp = w.defined() ? static_cast<const P*>(w.raw()) : nullptr;
    const P* bp = b.defined() ? static_cast<const P*>(b.raw()) : nullptr;
    if (vec_rows(D, {&x, &y, &gate, &y2c, &g2c, &w, &b, &o})) {
      k_row_norm_vec<float, Y, G, P, O, kVecPerThread><<<static_cast<unsigned>(R), vec_threads(D), 0, stream()>>>(
          xp, t, wp, bp, static_cast<O*>(o.raw()), static_cast<int>(D), eps, mode, per_row);
    } else {
      auto kern = k_add_row_norm<Y, G, P, O>;
      size_t sm = smem_for(D, reinterpret_cast<const void*>(kern));
      kern<<<static_cast<unsigned>(R), kThreads, sm, stream()>>>(xp, t, wp, bp, static_cast<O*>(o.raw()), D, eps,
                                                                  mode, per_row);
    }
  }))));
  X2V_LAUNCH_CHECK();
  return o;
}

}  // namespace

Tensor add_layer_norm(const Tensor& x, const Tensor& y, const Tensor& gate, const Tensor& weight, const Tensor& bias,
                      float eps, DType out) {
  return add_row_norm(x, y, gate, Tensor(), Tensor(), false, weight, bias, eps, 0, out, "add_layer_norm");
}

Tensor add_layer_norm_modulate(Tensor& x, const Tensor& y, const Tensor& gate, const Tensor& y2, const Tensor& gate2,
                               const Tensor& shift, const Tensor& scale, float eps, DType out) {
  return add_row_norm(x, y, gate, y2, gate2, true, shift, scale, eps, 1, out, "add_layer_norm_modulate");
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, DType out) {
  return row_norm(x, weight, bias, eps, 0, out, "layer_norm");
}

Tensor layer_norm_modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, float eps, DType out) {
  return row_norm(x, shift, scale, eps, 1, out, "layer_norm_modulate");
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps, DType out) {
  return row_norm(x, weight, Tensor(), eps, 2, out, "rms_norm");
}

namespace {
Tensor channel_rms_impl(const Tensor& x, const Tensor& gamma, bool silu) {
  x2v::cuda::require_float(x, "channel_rms_norm", "x");
  x2v::cuda::require_float(gamma, "channel_rms_norm", "gamma");
  if (x.dim() < 1 || gamma.numel() != x.size(0))
    fail(ErrorKind::InvalidArgument, "channel_rms_norm: x ", x.desc(), " and gamma ", gamma.desc(), " do not match");
  const int64_t C = x.size(0), N = C ? x.numel() / C : 0;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  if (!N || !C) return y;
  X2V_DISPATCH_FLOAT(x.dtype(), X, X2V_DISPATCH_FLOAT(gamma.dtype(), G, {
    k_channel_rms<<<x2v::cuda::grid_for(N, 256), 256, 0, stream()>>>(
        static_cast<const X*>(x.raw()), static_cast<const G*>(gamma.raw()), static_cast<X*>(y.raw()), C, N, silu);
  }));
  X2V_LAUNCH_CHECK();
  return y;
}
}  // namespace

Tensor channel_rms_norm(const Tensor& x, const Tensor& gamma) { return channel_rms_impl(x, gamma, false); }
// The VAE's RMS_norm → SiLU pair of every residual block and head, in one pass.
Tensor channel_rms_norm_silu(const Tensor& x, const Tensor& gamma) { return channel_rms_impl(x, gamma, true); }

}  // namespace x2v::ops::cuda
