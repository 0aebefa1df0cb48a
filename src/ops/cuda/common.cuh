// Shared by the CUDA backend's translation units: error checks, the stream and library handles,
// element load/store helpers.
#pragma once

#include <cstdint>

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#ifdef X2V_WITH_CUDNN
#include <cudnn.h>
#endif

#include "core/error.h"
#include "core/tensor.h"
#include "ops/cuda/cuda.h"

#define X2V_CUDA_CHECK(call)                                                                          \
  do {                                                                                                \
    cudaError_t e_ = (call);                                                                          \
    if (e_ != cudaSuccess)                                                                            \
      ::x2v::fail(::x2v::ErrorKind::Device, #call " failed: ", cudaGetErrorString(e_), " (", __FILE__, \
                  ":", __LINE__, ")");                                                               \
  } while (0)

// After every launch: a bad configuration shows up here, not at some later synchronization.
#define X2V_LAUNCH_CHECK() X2V_CUDA_CHECK(cudaGetLastError())

#define X2V_CUBLAS_CHECK(call)                                                                          \
  do {                                                                                                  \
    cublasStatus_t s_ = (call);                                                                         \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                                    \
      ::x2v::fail(::x2v::ErrorKind::Device, #call " failed: cublas status ", static_cast<int>(s_), " (", \
                  __FILE__, ":", __LINE__, ")");                                                        \
  } while (0)

#ifdef X2V_WITH_CUDNN
#define X2V_CUDNN_CHECK(call)                                                                              \
  do {                                                                                                     \
    cudnnStatus_t s_ = (call);                                                                             \
    if (s_ != CUDNN_STATUS_SUCCESS)                                                                        \
      ::x2v::fail(::x2v::ErrorKind::Device, #call " failed: ", cudnnGetErrorString(s_), " (", __FILE__, ":", \
                  __LINE__, ")");                                                                          \
  } while (0)
#endif

namespace x2v::cuda {

cudaStream_t stream();
cublasLtHandle_t cublaslt();
#ifdef X2V_WITH_CUDNN
// One cuDNN handle on stream(), shared by attention and convolution.
cudnnHandle_t cudnn();
#endif
// Scratch for one library call (cuBLASLt, cuDNN), from the caching allocator: keep the tensor until the
// call is queued. Blocks are reused in stream order, so freeing it right after is safe, and the
// peak statistics see exactly the scratch in use.
Tensor workspace(size_t bytes);

inline unsigned grid_for(int64_t n, int threads, int64_t max_blocks = 65535LL * 32) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > max_blocks) b = max_blocks;
  return static_cast<unsigned>(b);
}

// Checks an op's device inputs: defined, on CUDA, and of a dtype the kernels read.
void require_device(const Tensor& t, const char* op, const char* name);
void require_float(const Tensor& t, const char* op, const char* name);  // f32 or bf16
// Returns x as bf16 (converted on the device if needed).
Tensor as_bf16(const Tensor& x);
Tensor as_f32(const Tensor& x);

}  // namespace x2v::cuda

namespace x2v::cuda::dev {

__device__ __forceinline__ float ld(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
__device__ __forceinline__ float round_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }
// Four consecutive elements at p[i] (i a multiple of 4; p 16-byte aligned for f32, 8 for bf16): one
// vector access instead of four, for the row kernels that are bound by memory.
__device__ __forceinline__ void ld4(const float* p, int64_t i, float (&v)[4]) {
  const float4 a = *reinterpret_cast<const float4*>(p + i);
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
}
__device__ __forceinline__ void ld4(const __nv_bfloat16* p, int64_t i, float (&v)[4]) {
  const uint2 a = *reinterpret_cast<const uint2*>(p + i);
  const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&a.x));
  const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&a.y));
  v[0] = lo.x, v[1] = lo.y, v[2] = hi.x, v[3] = hi.y;
}
__device__ __forceinline__ void st4(float* p, int64_t i, const float (&v)[4]) {
  *reinterpret_cast<float4*>(p + i) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void st4(__nv_bfloat16* p, int64_t i, const float (&v)[4]) {
  const __nv_bfloat162 lo = __floats2bfloat162_rn(v[0], v[1]), hi = __floats2bfloat162_rn(v[2], v[3]);
  uint2 a;
  a.x = *reinterpret_cast<const uint32_t*>(&lo);
  a.y = *reinterpret_cast<const uint32_t*>(&hi);
  *reinterpret_cast<uint2*>(p + i) = a;
}
// Whether ld4/st4 may be used on a tensor's storage.
inline bool vec4_aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

__device__ __forceinline__ float silu(float x) { return x / (1.f + __expf(-x)); }
__device__ __forceinline__ float gelu_tanh(float x) {
  const float k0 = 0.7978845608028654f, k1 = 0.044715f;
  return 0.5f * x * (1.f + tanhf(k0 * (x + k1 * x * x * x)));
}
__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.f + erff(x * 0.7071067811865476f)); }

// Block-wide sum for blockDim.x a multiple of 32 (≤ 1024); `sh` holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // sh may still be read by a previous call
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  float t = lane < nw ? sh[lane] : 0.f;
  for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
  return t;
}

}  // namespace x2v::cuda::dev

// Calls F.template operator()<T>() with T = float or __nv_bfloat16 per the dtype.
#define X2V_DISPATCH_FLOAT(dtype, T, ...)                                         \
  do {                                                                            \
    if ((dtype) == ::x2v::DType::F32) {                                           \
      using T = float;                                                            \
      __VA_ARGS__;                                                                \
    } else if ((dtype) == ::x2v::DType::BF16) {                                   \
      using T = __nv_bfloat16;                                                    \
      __VA_ARGS__;                                                                \
    } else {                                                                      \
      ::x2v::fail(::x2v::ErrorKind::Unsupported, "CUDA op: dtype ", dtype_name(dtype), \
                  " is not handled (f32 or bf16)");                               \
    }                                                                             \
  } while (0)

namespace x2v::ops::cuda {
namespace dev = ::x2v::cuda::dev;
}  // namespace x2v::ops::cuda
