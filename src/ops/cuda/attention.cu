// Attention on CUDA: the own Hopper flash kernel (flash_attention.cu) for the DiT's long self-attention,
// cuDNN's fused flash attention through the backend (graph) C API for the other bf16 shapes it takes
// (the DiT's cross-attention), and the backend's own kernel for everything else (bias, key masks, head
// dims cuDNN does not take, builds without cuDNN).
//
// The cuDNN graph is the SDPA pattern its engines recognize: S = Q·Kᵀ (f32), S·scale, row max,
// exp(S − max), row sum, divide, P (bf16) · V. Plans are cached per shape; building one runs the
// heuristics and may compile a kernel at run time, so the first call of a shape is slow.
#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "ops/cuda/common.cuh"

#ifdef X2V_WITH_CUDNN
#include <cudnn.h>
#endif

namespace x2v::ops::cuda {
namespace {

using x2v::cuda::stream;

// ---------------------------------------------------------------------------------------------
// Own kernel: one warp per query row, keys in tiles of 32 staged in shared memory (f32). Lane l
// scores key l of the tile; the output row is spread over the lanes (dims l, l+32, ...). Online
// softmax in f32. Not tuned for the DiT's shapes (cuDNN takes those); it is exact and general.
constexpr int kWarps = 8;
constexpr int kTile = 32;
constexpr int kMaxD = 256;

template <class T, class B>
__global__ void k_attention(const T* q, const T* k, const T* v, T* o, const B* bias, const uint8_t* keep,
                            int64_t Lq, int64_t Lk, int H, int D, int Dv, float scale) {
  extern __shared__ float sm[];
  float* ks = sm;                          // [kTile][D + 1]
  float* vs = ks + kTile * (D + 1);        // [kTile][Dv]
  float* qs = vs + kTile * Dv;             // [kWarps][D]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int h = blockIdx.y;
  const int64_t row = blockIdx.x * int64_t(kWarps) + warp;
  const bool active = row < Lq;
  float* qr = qs + warp * D;
  if (active)
    for (int d = lane; d < D; d += 32) qr[d] = dev::round_bf16(dev::ld(q, (row * H + h) * D + d)) * scale;
  float acc[kMaxD / 32];
#pragma unroll
  for (int i = 0; i < kMaxD / 32; ++i) acc[i] = 0.f;
  float m = -FLT_MAX, l = 0.f;
  for (int64_t j0 = 0; j0 < Lk; j0 += kTile) {
    const int nt = Lk - j0 < kTile ? static_cast<int>(Lk - j0) : kTile;
    __syncthreads();
    for (int e = threadIdx.x; e < nt * D; e += blockDim.x) {
      const int j = e / D, d = e % D;
      ks[j * (D + 1) + d] = dev::round_bf16(dev::ld(k, ((j0 + j) * H + h) * D + d));
    }
    for (int e = threadIdx.x; e < nt * Dv; e += blockDim.x) {
      const int j = e / Dv, d = e % Dv;
      vs[j * Dv + d] = dev::round_bf16(dev::ld(v, ((j0 + j) * H + h) * Dv + d));
    }
    __syncthreads();
    if (!active) continue;
    float s = -FLT_MAX;
    if (lane < nt) {
      const float* kr = ks + lane * (D + 1);
      float t = 0.f;
      for (int d = 0; d < D; ++d) t += qr[d] * kr[d];
      if (bias) t += dev::ld(bias, (int64_t(h) * Lq + row) * Lk + j0 + lane);
      if (keep && !keep[j0 + lane]) t = -FLT_MAX;
      s = t;
    }
    float tmax = s;
    for (int off = 16; off > 0; off >>= 1) tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, off));
    const float mn = fmaxf(m, tmax);
    const float corr = __expf(m - mn);
    const float p = lane < nt ? __expf(s - mn) : 0.f;
    float psum = p;
    for (int off = 16; off > 0; off >>= 1) psum += __shfl_xor_sync(0xffffffffu, psum, off);
    l = l * corr + psum;
    m = mn;
#pragma unroll
    for (int i = 0; i < kMaxD / 32; ++i) acc[i] *= corr;
    for (int j = 0; j < nt; ++j) {
      const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
      for (int i = 0; i < kMaxD / 32; ++i) {
        const int d = lane + 32 * i;
        if (d < Dv) acc[i] += pj * vs[j * Dv + d];
      }
    }
  }
  if (!active) return;
  const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int i = 0; i < kMaxD / 32; ++i) {
    const int d = lane + 32 * i;
    if (d < Dv) dev::st(o, (row * H + h) * Dv + d, acc[i] * inv);
  }
}

Tensor materialized_attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& bias,
                              const Tensor& keep);

// The materialized path keeps its f32 scores within this many elements (256 MiB): whole when they
// fit, else (without a bias) a block of queries at a time.
constexpr int64_t kMaxScores = int64_t(64) << 20;

template <class M>
__global__ void k_keep_flags(const M* mask, uint8_t* keep, int64_t n) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < n; j += int64_t(gridDim.x) * blockDim.x)
    keep[j] = dev::ld(mask, j) != 0.f;
}

// keep[j] = key_mask[j] != 0 as u8 on the device. A float mask already there is converted in place, so
// the text encoders' masked attention (every T5 block) does not wait on a copy to the host.
Tensor keep_flags(const Tensor& key_mask) {
  const int64_t n = key_mask.numel();
  Tensor keep = Tensor::empty({n}, DType::U8, Device::CUDA);
  if (key_mask.device() == Device::CUDA && (key_mask.dtype() == DType::F32 || key_mask.dtype() == DType::BF16)) {
    if (n == 0) return keep;
    X2V_DISPATCH_FLOAT(key_mask.dtype(), M, {
      k_keep_flags<<<x2v::cuda::grid_for(n, 256), 256, 0, stream()>>>(static_cast<const M*>(key_mask.raw()),
                                                                      static_cast<uint8_t*>(keep.raw()), n);
    });
    X2V_LAUNCH_CHECK();
    return keep;
  }
  const std::vector<float> mv = key_mask.to_vector();  // host masks, and integer or bool ones
  Tensor h = Tensor::empty({n}, DType::U8);
  for (int64_t j = 0; j < n; ++j) h.data<uint8_t>()[j] = mv[static_cast<size_t>(j)] != 0.f;
  return h.to(Device::CUDA);
}

// allow_gemm: the materialized path (two GEMMs and a softmax) may be taken instead of the SIMT
// kernel: always without a bias (queries are then chunked to bound the scores), with a bias when
// all its scores fit at once.
Tensor own_attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& bias,
                     const Tensor& key_mask, bool allow_gemm) {
  const int64_t Lq = q.size(0), H = q.size(1), D = q.size(2), Lk = k.size(0), Dv = v.size(2);
  const bool gemm = allow_gemm && (!bias.defined() || H * Lq * Lk <= kMaxScores);
  if (!gemm && (D > kMaxD || Dv > kMaxD))
    fail(ErrorKind::Unsupported, "CUDA attention: head dims ", D, "/", Dv, " exceed the own kernel's ", kMaxD,
         bias.defined() ? " and the bias's scores are too many for the two-GEMM path (split the queries)"
                        : " (use the automatic choice, which takes the two-GEMM path for any head dim)");
  Tensor out = Tensor::empty({Lq, H, Dv}, q.dtype(), Device::CUDA);
  if (!out.numel()) return out;
  // Inputs in one dtype (q's): the kernel templates on a single element type.
  Tensor kk = x2v::cuda::convert(k, q.dtype()), vv = x2v::cuda::convert(v, q.dtype());
  const Tensor keep = key_mask.defined() ? keep_flags(key_mask) : Tensor();
  // Two GEMMs are cheaper than the SIMT kernel whenever their scores can be held.
  if (gemm) return materialized_attention(q, kk, vv, scale, bias, keep);
  const size_t smem = sizeof(float) * static_cast<size_t>(kTile * (D + 1) + kTile * Dv + kWarps * D);
  dim3 grid(static_cast<unsigned>((Lq + kWarps - 1) / kWarps), static_cast<unsigned>(H));
  if (H > 65535) fail(ErrorKind::Unsupported, "CUDA attention: ", H, " heads");
  auto run = [&](auto tq, auto tb) {
    using T = decltype(tq);
    using B = decltype(tb);
    auto kern = k_attention<T, B>;
    X2V_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    kern<<<grid, kWarps * 32, smem, stream()>>>(
        static_cast<const T*>(q.raw()), static_cast<const T*>(kk.raw()), static_cast<const T*>(vv.raw()),
        static_cast<T*>(out.raw()), bias.defined() ? static_cast<const B*>(bias.raw()) : nullptr,
        keep.defined() ? static_cast<const uint8_t*>(keep.raw()) : nullptr, Lq, Lk, static_cast<int>(H),
        static_cast<int>(D), static_cast<int>(Dv), scale);
  };
  const DType bt = bias.defined() ? bias.dtype() : DType::F32;
  X2V_DISPATCH_FLOAT(q.dtype(), T, X2V_DISPATCH_FLOAT(bt, B, run(T{}, B{})));
  X2V_LAUNCH_CHECK();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Short sequences with a bias or key mask (T5: 512 tokens, 64 heads, per-layer position bias):
// the scores fit in memory, so S = Q·Kᵀ and P·V go through cuBLASLt and only the softmax is ours.
// One block per score row: logits = scale·s + bias, masked keys at the lowest value, softmax in f32,
// P written in bf16 for the second GEMM.
template <class B>
__global__ void k_softmax_rows(const float* S, const B* bias, const uint8_t* keep, __nv_bfloat16* P, int64_t Lk,
                               float scale) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x;
  const float* s = S + r * Lk;
  const B* b = bias ? bias + r * Lk : nullptr;
  float mx = -FLT_MAX;
  for (int64_t j = threadIdx.x; j < Lk; j += blockDim.x) {
    float v = s[j] * scale + (b ? dev::ld(b, j) : 0.f);
    if (keep && !keep[j]) v = -FLT_MAX;
    mx = fmaxf(mx, v);
  }
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
  __syncthreads();
  mx = -FLT_MAX;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) mx = fmaxf(mx, red[w]);
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < Lk; j += blockDim.x) {
    float v = s[j] * scale + (b ? dev::ld(b, j) : 0.f);
    if (keep && !keep[j]) v = -FLT_MAX;
    sum += __expf(v - mx);
  }
  const float inv = 1.f / dev::block_sum(sum, red);
  for (int64_t j = threadIdx.x; j < Lk; j += blockDim.x) {
    float v = s[j] * scale + (b ? dev::ld(b, j) : 0.f);
    if (keep && !keep[j]) v = -FLT_MAX;
    P[r * Lk + j] = __float2bfloat16_rn(__expf(v - mx) * inv);
  }
}

Tensor materialized_attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& bias,
                              const Tensor& keep) {
  const int64_t Lq = q.size(0), H = q.size(1), Lk = k.size(0), Dv = v.size(2);
  // Query rows per pass: the f32 scores [H, rows, Lk] stay within kMaxScores. A bias is only
  // given here when everything fits (its rows are not contiguous per query block).
  const int64_t rows = bias.defined() ? Lq : std::max<int64_t>(1, std::min(Lq, kMaxScores / std::max<int64_t>(1, H * Lk)));
  Tensor kh = permute(x2v::cuda::as_bf16(k), {1, 0, 2});  // [H, Lk, D]
  Tensor vt = permute(x2v::cuda::as_bf16(v), {1, 2, 0});  // [H, Dv, Lk]
  const Tensor qb = x2v::cuda::as_bf16(q);
  Tensor out = rows < Lq ? Tensor::empty({Lq, H, Dv}, q.dtype(), Device::CUDA) : Tensor();
  for (int64_t r0 = 0; r0 < Lq; r0 += rows) {
    const int64_t n = std::min(rows, Lq - r0);
    Tensor qh = permute(qb.slice(r0, r0 + n), {1, 0, 2});  // [H, n, D]
    Tensor S = matmul_nt(qh, kh, DType::F32);              // [H, n, Lk]
    Tensor P = Tensor::empty({H, n, Lk}, DType::BF16, Device::CUDA);
    auto run = [&](auto tb) {
      using B = decltype(tb);
      k_softmax_rows<B><<<static_cast<unsigned>(H * n), 256, 0, stream()>>>(
          static_cast<const float*>(S.raw()), bias.defined() ? static_cast<const B*>(bias.raw()) : nullptr,
          keep.defined() ? static_cast<const uint8_t*>(keep.raw()) : nullptr, static_cast<__nv_bfloat16*>(P.raw()),
          Lk, scale);
    };
    X2V_DISPATCH_FLOAT(bias.defined() ? bias.dtype() : DType::F32, B, run(B{}));
    X2V_LAUNCH_CHECK();
    S = Tensor();  // free the scores before the second GEMM allocates its output
    Tensor o = permute(matmul_nt(P, vt, q.dtype()), {1, 0, 2});  // [n, H, Dv]
    if (rows >= Lq) return o.reshape({Lq, H, Dv});
    out.slice(r0, r0 + n).copy_from(o);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
#ifdef X2V_WITH_CUDNN

// An owned backend descriptor.
struct Desc {
  cudnnBackendDescriptor_t d = nullptr;
  explicit Desc(cudnnBackendDescriptorType_t t) { X2V_CUDNN_CHECK(cudnnBackendCreateDescriptor(t, &d)); }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  ~Desc() {
    if (d) cudnnBackendDestroyDescriptor(d);
  }
  template <class V>
  void set(cudnnBackendAttributeName_t a, cudnnBackendAttributeType_t t, int64_t n, const V* v) {
    X2V_CUDNN_CHECK(cudnnBackendSetAttribute(d, a, t, n, v));
  }
  void set_desc(cudnnBackendAttributeName_t a, const Desc& o) {
    set(a, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &o.d);
  }
  void finalize() { X2V_CUDNN_CHECK(cudnnBackendFinalize(d)); }
};
using DescP = std::unique_ptr<Desc>;

enum Uid : int64_t { kQ = 1, kK = 2, kV = 3, kO = 4, kScale = 5, kBias = 6, kVirtual = 100 };

struct SdpaPlan {
  std::vector<DescP> keep;  // every descriptor the plan references
  DescP plan;
  int64_t workspace = 0;
  const char* kind = "graph";  // "graph" (composite SDPA pattern) or "fused op" (SDPA_FWD descriptor)
};

DescP tensor_desc(cudnnDataType_t t, std::vector<int64_t> dims, std::vector<int64_t> strides, int64_t uid,
                  bool is_virtual, bool by_value = false) {
  auto d = std::make_unique<Desc>(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  int64_t align = 16;
  d->set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &t);
  d->set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, static_cast<int64_t>(dims.size()), dims.data());
  d->set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, static_cast<int64_t>(strides.size()), strides.data());
  d->set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
  d->set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
  bool v = is_virtual, bv = by_value;
  d->set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v);
  if (by_value) d->set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &bv);
  d->finalize();
  return d;
}

// Runs the heuristics on a finalized operation graph and keeps the first engine config that
// finalizes into an execution plan.
bool pick_engine(Desc& graph, SdpaPlan* p, std::string* why) {
  cudnnHandle_t h = x2v::cuda::cudnn();
  auto& K = p->keep;
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    Desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
    heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    cudnnStatus_t st = cudnnBackendFinalize(heur.d);
    if (st != CUDNN_STATUS_SUCCESS) {
      *why = std::string("heuristics finalize: ") + cudnnGetErrorString(st);
      continue;
    }
    int64_t count = 0;
    st = cudnnBackendGetAttribute(heur.d, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                  nullptr);
    if (st != CUDNN_STATUS_SUCCESS || count <= 0) {
      *why = std::string("heuristics results: ") + cudnnGetErrorString(st) + ", " + std::to_string(count) + " configs";
      continue;
    }
    std::vector<DescP> cfgs;
    std::vector<cudnnBackendDescriptor_t> raw;
    for (int64_t i = 0; i < count; ++i) {
      cfgs.push_back(std::make_unique<Desc>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
      raw.push_back(cfgs.back()->d);
    }
    int64_t got = 0;
    if (cudnnBackendGetAttribute(heur.d, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                                 raw.data()) != CUDNN_STATUS_SUCCESS)
      continue;
    for (int64_t i = 0; i < got; ++i) {
      auto plan = std::make_unique<Desc>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      plan->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
      plan->set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, *cfgs[static_cast<size_t>(i)]);
      st = cudnnBackendFinalize(plan->d);
      if (st != CUDNN_STATUS_SUCCESS) {
        *why = std::string("engine config rejected: ") + cudnnGetErrorString(st);
        continue;
      }
      int64_t ws = 0, n = 0;
      X2V_CUDNN_CHECK(cudnnBackendGetAttribute(plan->d, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                                               1, &n, &ws));
      p->workspace = ws;
      p->plan = std::move(plan);
      for (auto& c : cfgs) K.push_back(std::move(c));
      return true;
    }
  }
  return false;
}

// The same attention as one fused SDPA operation (cuDNN ≥ 9.13.1): Q, K (not transposed), V, O and
// the scale; the engines behind it are the same flash kernels.
bool build_unified(SdpaPlan* p, int64_t H, int64_t Lq, int64_t Lk, int64_t D, int64_t Dv, std::string* why) {
#if CUDNN_VERSION >= 91301
  if (cudnnGetVersion() < 91301) {
    *why += "; the fused SDPA operation needs cuDNN 9.13.1 (loaded: " + std::to_string(cudnnGetVersion()) + ")";
    return false;
  }
  auto& K = p->keep;
  const cudnnDataType_t bf = CUDNN_DATA_BFLOAT16, f32 = CUDNN_DATA_FLOAT;
  K.push_back(tensor_desc(bf, {1, H, Lq, D}, {Lq * H * D, D, H * D, 1}, kQ, false));
  Desc& q = *K.back();
  K.push_back(tensor_desc(bf, {1, H, Lk, D}, {Lk * H * D, D, H * D, 1}, kK, false));
  Desc& k = *K.back();
  K.push_back(tensor_desc(bf, {1, H, Lk, Dv}, {Lk * H * Dv, Dv, H * Dv, 1}, kV, false));
  Desc& v = *K.back();
  K.push_back(tensor_desc(bf, {1, H, Lq, Dv}, {Lq * H * Dv, Dv, H * Dv, 1}, kO, false));
  Desc& o = *K.back();
  K.push_back(tensor_desc(f32, {1, 1, 1, 1}, {1, 1, 1, 1}, kScale, false, true));
  Desc& sc = *K.back();
  K.push_back(std::make_unique<Desc>(static_cast<cudnnBackendDescriptorType_t>(CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR)));
  Desc& op = *K.back();
  op.set_desc(CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC, q);
  op.set_desc(CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC, k);
  op.set_desc(CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC, v);
  op.set_desc(CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC, o);
  op.set_desc(CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC, sc);
  op.finalize();
  K.push_back(std::make_unique<Desc>(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR));
  Desc& graph = *K.back();
  cudnnHandle_t h = x2v::cuda::cudnn();
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &op.d);
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
  graph.finalize();
  std::string w2;
  p->kind = "fused op";
  if (pick_engine(graph, p, &w2)) return true;
  *why += "; fused SDPA operation: " + w2;
  return false;
#else
  (void)p, (void)H, (void)Lq, (void)Lk, (void)D, (void)Dv;
  *why += "; built against a cuDNN without the fused SDPA operation";
  return false;
#endif
}

// Builds the plan; returns null (with the reason in *why) when cuDNN has no engine for it.
// bias_t: 0 = no bias, 1 = f32, 2 = bf16 additive bias [H, Lq, Lk] (added after the scale).
std::unique_ptr<SdpaPlan> build_sdpa(int64_t H, int64_t Lq, int64_t Lk, int64_t D, int64_t Dv, int bias_t,
                                     std::string* why) {
  auto p = std::make_unique<SdpaPlan>();
  auto& K = p->keep;
  const cudnnDataType_t bf = CUDNN_DATA_BFLOAT16, f32 = CUDNN_DATA_FLOAT;
  // [L, H, D] tensors seen as [1, H, L, D] with strides (L·H·D, D, H·D, 1).
  K.push_back(tensor_desc(bf, {1, H, Lq, D}, {Lq * H * D, D, H * D, 1}, kQ, false));
  Desc& q = *K.back();
  K.push_back(tensor_desc(bf, {1, H, D, Lk}, {Lk * H * D, D, 1, H * D}, kK, false));
  Desc& kt = *K.back();
  K.push_back(tensor_desc(bf, {1, H, Lk, Dv}, {Lk * H * Dv, Dv, H * Dv, 1}, kV, false));
  Desc& v = *K.back();
  K.push_back(tensor_desc(bf, {1, H, Lq, Dv}, {Lq * H * Dv, Dv, H * Dv, 1}, kO, false));
  Desc& o = *K.back();
  K.push_back(tensor_desc(f32, {1, 1, 1, 1}, {1, 1, 1, 1}, kScale, false, true));
  Desc& sc = *K.back();
  int64_t vid = kVirtual;
  const std::vector<int64_t> sdim = {1, H, Lq, Lk}, sstr = {H * Lq * Lk, Lq * Lk, Lk, 1};
  const std::vector<int64_t> rdim = {1, H, Lq, 1}, rstr = {H * Lq, Lq, 1, 1};
  auto virt = [&](cudnnDataType_t t, const std::vector<int64_t>& dm, const std::vector<int64_t>& st) -> Desc& {
    K.push_back(tensor_desc(t, dm, st, vid++, true));
    return *K.back();
  };
  Desc& s1 = virt(f32, sdim, sstr);
  Desc& s2 = virt(f32, sdim, sstr);
  Desc& mx = virt(f32, rdim, rstr);
  Desc& s3 = virt(f32, sdim, sstr);
  Desc& ex = virt(f32, sdim, sstr);
  Desc& sm = virt(f32, rdim, rstr);
  Desc& pr = virt(bf, sdim, sstr);

  std::vector<cudnnBackendDescriptor_t> ops;
  auto matmul = [&](Desc& a, Desc& b, Desc& c) {
    K.push_back(std::make_unique<Desc>(CUDNN_BACKEND_MATMUL_DESCRIPTOR));
    Desc& md = *K.back();
    cudnnDataType_t ct = CUDNN_DATA_FLOAT;
    md.set(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &ct);
    md.finalize();
    K.push_back(std::make_unique<Desc>(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR));
    Desc& op = *K.back();
    op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_ADESC, a);
    op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_BDESC, b);
    op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_CDESC, c);
    op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_DESC, md);
    op.finalize();
    ops.push_back(op.d);
  };
  auto pointwise = [&](cudnnPointwiseMode_t mode, Desc& x, Desc* b, Desc& y) {
    K.push_back(std::make_unique<Desc>(CUDNN_BACKEND_POINTWISE_DESCRIPTOR));
    Desc& pd = *K.back();
    cudnnDataType_t ct = CUDNN_DATA_FLOAT;
    pd.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    pd.set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &ct);
    pd.finalize();
    K.push_back(std::make_unique<Desc>(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR));
    Desc& op = *K.back();
    op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pd);
    op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
    if (b) op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b);
    op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    op.finalize();
    ops.push_back(op.d);
  };
  auto reduction = [&](cudnnReduceTensorOp_t mode, Desc& x, Desc& y) {
    K.push_back(std::make_unique<Desc>(CUDNN_BACKEND_REDUCTION_DESCRIPTOR));
    Desc& rd = *K.back();
    cudnnDataType_t ct = CUDNN_DATA_FLOAT;
    rd.set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode);
    rd.set(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &ct);
    rd.finalize();
    K.push_back(std::make_unique<Desc>(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR));
    Desc& op = *K.back();
    op.set_desc(CUDNN_ATTR_OPERATION_REDUCTION_DESC, rd);
    op.set_desc(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x);
    op.set_desc(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y);
    op.finalize();
    ops.push_back(op.d);
  };
  matmul(q, kt, s1);
  Desc* logits = &s2;
  if (bias_t) {
    K.push_back(tensor_desc(bias_t == 2 ? bf : f32, sdim, sstr, kBias, false));
    Desc& bias = *K.back();
    pointwise(CUDNN_POINTWISE_MUL, s1, &sc, s2);
    Desc& s2b = virt(f32, sdim, sstr);
    pointwise(CUDNN_POINTWISE_ADD, s2, &bias, s2b);
    logits = &s2b;
  } else {
    pointwise(CUDNN_POINTWISE_MUL, s1, &sc, s2);
  }
  reduction(CUDNN_REDUCE_TENSOR_MAX, *logits, mx);
  pointwise(CUDNN_POINTWISE_SUB, *logits, &mx, s3);
  pointwise(CUDNN_POINTWISE_EXP, s3, nullptr, ex);
  reduction(CUDNN_REDUCE_TENSOR_ADD, ex, sm);
  pointwise(CUDNN_POINTWISE_DIV, ex, &sm, pr);
  matmul(pr, v, o);

  K.push_back(std::make_unique<Desc>(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR));
  Desc& graph = *K.back();
  cudnnHandle_t h = x2v::cuda::cudnn();
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(ops.size()), ops.data());
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
  graph.finalize();

  if (pick_engine(graph, p.get(), why)) return p;
  *why = "SDPA graph: " + (why->empty() ? std::string("cuDNN has no engine for it") : *why);
  return nullptr;
}

struct PlanCache {
  std::mutex mu;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int>, std::shared_ptr<SdpaPlan>> plans;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int>, std::string> failed;
};
PlanCache& plan_cache() {
  static PlanCache c;
  return c;
}

std::shared_ptr<SdpaPlan> sdpa_plan(int64_t H, int64_t Lq, int64_t Lk, int64_t D, int64_t Dv, int bias_t,
                                    std::string* why) {
  PlanCache& c = plan_cache();
  std::lock_guard<std::mutex> lk(c.mu);
  auto key = std::make_tuple(H, Lq, Lk, D, Dv, bias_t);
  if (auto it = c.plans.find(key); it != c.plans.end()) return it->second;
  if (auto it = c.failed.find(key); it != c.failed.end()) {
    *why = it->second;
    return nullptr;
  }
  std::string reason;
  std::shared_ptr<SdpaPlan> p;
  try {
    p = build_sdpa(H, Lq, Lk, D, Dv, bias_t, &reason);
  } catch (const Error& e) {
    reason = std::string("SDPA graph: ") + e.what();
  }
  if (!p && !bias_t) {
    try {
      auto u = std::make_shared<SdpaPlan>();
      if (build_unified(u.get(), H, Lq, Lk, D, Dv, &reason)) p = u;
    } catch (const Error& e) {
      reason += std::string("; fused SDPA operation: ") + e.what();
    }
  }
  if (!p) {
    c.failed[key] = reason;
    *why = reason;
    return nullptr;
  }
  if (std::getenv("X2V_CUDA_VERBOSE"))
    std::fprintf(stderr, "x2v cuda: cuDNN %d SDPA plan H%lld Lq%lld Lk%lld D%lld%s: %s, workspace %lld\n",
                 static_cast<int>(cudnnGetVersion()), (long long)H, (long long)Lq, (long long)Lk, (long long)D,
                 bias_t ? " +bias" : "", p->kind, (long long)p->workspace);
  c.plans[key] = p;
  return p;
}

}  // namespace

int cudnn_version() { return static_cast<int>(cudnnGetVersion()); }

namespace {

bool cudnn_attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& bias, Tensor* out,
                     std::string* why) {
  const int64_t Lq = q.size(0), H = q.size(1), D = q.size(2), Lk = k.size(0), Dv = v.size(2);
  if (D % 8 || Dv % 8 || D > 256 || Dv > 256) {
    *why = "head dims must be multiples of 8 up to 256";
    return false;
  }
  // 0: no bias; 1: f32 bias; 2: bf16 bias (not the cuDNN enum: CUDNN_DATA_FLOAT is 0).
  const int bias_t = !bias.defined() ? 0 : bias.dtype() == DType::BF16 ? 2 : 1;
  auto plan = sdpa_plan(H, Lq, Lk, D, Dv, bias_t, why);
  if (!plan) return false;
  Tensor qb = x2v::cuda::as_bf16(q), kb = x2v::cuda::as_bf16(k), vb = x2v::cuda::as_bf16(v);
  Tensor ob = Tensor::empty({Lq, H, Dv}, DType::BF16, Device::CUDA);
  float sc = scale;
  void* ptrs[] = {qb.raw(), kb.raw(), vb.raw(), ob.raw(), &sc, bias.defined() ? bias.raw() : nullptr};
  int64_t uids[] = {kQ, kK, kV, kO, kScale, kBias};
  const int64_t n = bias.defined() ? 6 : 5;
  Tensor scratch = plan->workspace ? x2v::cuda::workspace(static_cast<size_t>(plan->workspace)) : Tensor();
  void* ws = scratch.defined() ? scratch.raw() : nullptr;
  Desc pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs);
  pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
  pack.finalize();
  X2V_CUDNN_CHECK(cudnnBackendExecute(x2v::cuda::cudnn(), plan->plan->d, pack.d));
  *out = q.dtype() == DType::BF16 ? ob : x2v::cuda::convert(ob, q.dtype());
  return true;
}

#endif  // X2V_WITH_CUDNN

}  // namespace
#ifndef X2V_WITH_CUDNN
int cudnn_version() { return 0; }
#endif
namespace {

void check_args(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias, const Tensor& key_mask) {
  x2v::cuda::require_float(q, "attention", "q");
  x2v::cuda::require_float(k, "attention", "k");
  x2v::cuda::require_float(v, "attention", "v");
  if (q.dim() != 3 || k.dim() != 3 || v.dim() != 3 || k.size(0) != v.size(0) || q.size(1) != k.size(1) ||
      k.size(1) != v.size(1) || q.size(2) != k.size(2))
    fail(ErrorKind::InvalidArgument, "attention: q ", q.desc(), ", k ", k.desc(), ", v ", v.desc(),
         " do not match ([Lq, H, D], [Lk, H, D], [Lk, H, Dv])");
  if (bias.defined()) {
    x2v::cuda::require_float(bias, "attention", "bias");
    if (bias.numel() != q.size(1) * q.size(0) * k.size(0))
      fail(ErrorKind::InvalidArgument, "attention: bias ", bias.desc(), " is not [H, Lq, Lk]");
  }
  if (key_mask.defined() && key_mask.numel() != k.size(0))
    fail(ErrorKind::InvalidArgument, "attention: key_mask ", key_mask.desc(), " is not [Lk]");
}

}  // namespace

namespace {
std::atomic<AttnImpl> g_default_impl{AttnImpl::Auto};
// Below this many keys the flash kernel's per-tile prologue shows (cross-attention over 512 text
// tokens: 423 TFLOP/s against cuDNN's 575 on the H100, run 38), so cuDNN keeps those.
constexpr int64_t kFlashMinKeys = 4096;
}  // namespace

void set_attention_impl(AttnImpl impl) { g_default_impl = impl; }

Tensor attention_with(AttnImpl impl, const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                      const Tensor& bias, const Tensor& key_mask) {
  check_args(q, k, v, bias, key_mask);
  if (q.size(0) == 0 || k.size(0) == 0 || q.size(1) == 0) {
    // No keys: the references' softmax over nothing; an empty output otherwise.
    Tensor o = Tensor::zeros({q.size(0), q.size(1), v.size(2)}, q.dtype(), Device::CUDA);
    return o;
  }
  const bool plain = !bias.defined() && !key_mask.defined();
  std::string why;
  Tensor out;
  if (impl == AttnImpl::Flash || (impl == AttnImpl::Auto && plain && k.size(0) >= kFlashMinKeys)) {
    if (!plain) fail(ErrorKind::Unsupported, "flash attention: no bias or key mask");
    if (flash_attention(q, k, v, scale, &out, &why)) return out;
    if (impl == AttnImpl::Flash) fail(ErrorKind::Unsupported, "flash attention: ", why);
  }
  if (impl != AttnImpl::Own && impl != AttnImpl::Flash && !key_mask.defined()) {
#ifdef X2V_WITH_CUDNN
    if (cudnn_attention(q, k, v, scale, bias, &out, &why)) return out;
    if (impl == AttnImpl::Cudnn) fail(ErrorKind::Unsupported, "cuDNN attention: ", why);
#else
    if (impl == AttnImpl::Cudnn) fail(ErrorKind::Unsupported, "cuDNN attention: this build has no cuDNN");
#endif
  } else if (impl == AttnImpl::Cudnn) {
    fail(ErrorKind::Unsupported, "cuDNN attention: key masks go to the own kernel");
  }
  return own_attention(q, k, v, scale, bias, key_mask, impl == AttnImpl::Auto);
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& bias,
                 const Tensor& key_mask) {
  // A preference set for benchmarks applies to the plain attention it can run; biased or masked
  // attention (T5, CLIP) keeps the automatic choice.
  const bool plain = !bias.defined() && !key_mask.defined() && q.dim() == 3 && q.size(2) == 128;
  return attention_with(plain ? g_default_impl.load() : AttnImpl::Auto, q, k, v, scale, bias, key_mask);
}

}  // namespace x2v::ops::cuda
