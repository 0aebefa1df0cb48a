// The CUDA backend: device runtime (allocator, stream, statistics) and the ops on device tensors.
// This header includes no CUDA headers, so the dispatchers in src/ops/<family>.cpp and the tools can
// include it; everything here exists only in builds with X2V_WITH_CUDA.
//
// Dtypes: ops accept f32 and bf16 inputs (matrix and attention operands are rounded to bf16, as the
// reference's autocast and flash_attention do) and accumulate in f32. Unless an op says otherwise
// its output has the dtype of its first input; an explicit `out` dtype overrides that.
// Every op is queued on the backend's one stream; copies to and from the host synchronize it.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "ops/cuda/flash_schedule.h"
#include "ops/linear.h"

namespace x2v::cuda {

// True when a CUDA device can be used (driver, device and runtime present).
bool available();
// Selects the device and creates the stream and library handles (idempotent). The allocator is
// registered with the core at program start; this is called lazily by the first allocation or op.
void init();
void synchronize();

struct MemStats {
  size_t in_use = 0;         // bytes held by live tensors (rounded to the allocator's block sizes)
  size_t peak_in_use = 0;    // since start or the last reset_peak()
  size_t reserved = 0;       // bytes obtained from cudaMalloc, live or cached
  size_t peak_reserved = 0;  // what the process took from the device at most
  size_t budget = 0;         // 0 = no limit besides the device
  size_t cudamalloc_calls = 0;
};
MemStats mem_stats();
void reset_peak();
// Limit on reserved bytes; an allocation past it first frees the cache, then fails with OutOfMemory.
void set_memory_budget(size_t bytes);
// Returns cached (free) blocks to the device.
void empty_cache();
// For tests: every block handed out is first filled with 0xFF bytes (NaN in f32/bf16), so an op
// that leaves part of its output unwritten produces NaNs.
void set_poison_allocations(bool on);

std::string device_description();  // "NVIDIA H100 80GB HBM3, 132 SMs, cc 9.0, 79.1 GiB"
// The device's compute capability as 10·major + minor (90 on Hopper), and its number of SMs.
int compute_capability();
int sm_count();

// Timing with device events on the backend stream.
class Timer {
 public:
  Timer();
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  void start();
  float stop_ms();  // synchronizes

 private:
  void* a_ = nullptr;
  void* b_ = nullptr;
};

// Fills a device tensor (f32 or bf16) with uniform values in [lo, hi) from a counter-based hash:
// random weights are made on the GPU, never copied from the host.
void fill_uniform(Tensor& t, uint64_t seed, float lo, float hi);
// Sets every byte to 0xFF (NaN in f32 and bf16), so an element an op forgets to write shows up.
void poison(Tensor& t);
// Dtype conversion on the device (f32 <-> bf16 <-> f16).
Tensor convert(const Tensor& x, DType to);

}  // namespace x2v::cuda

namespace x2v::ops::cuda {

// linear.cu (cuBLASLt). Bias and tanh-GELU are fused in the GEMM epilogue.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, Act act, DType out);
Tensor matmul_nt(const Tensor& a, const Tensor& b);
Tensor matmul_nt(const Tensor& a, const Tensor& b, DType out);

// norm.cu
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, DType out);
Tensor layer_norm_modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, float eps,
                           DType out);
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps, DType out);
// Residual updates fused with the norm after them (ops/norm.h; gates undefined = 1, one row [D] or per
// token): LN(x + y·gate)·w + b with x unchanged, or x += y·gate + y2·gate2 (y2 may be undefined) in
// place and LN(x)·(1 + scale) + shift. The normalized value is returned.
Tensor add_layer_norm(const Tensor& x, const Tensor& y, const Tensor& gate, const Tensor& weight, const Tensor& bias,
                      float eps, DType out);
Tensor add_layer_norm_modulate(Tensor& x, const Tensor& y, const Tensor& gate, const Tensor& y2, const Tensor& gate2,
                               const Tensor& shift, const Tensor& scale, float eps, DType out);
Tensor channel_rms_norm(const Tensor& x, const Tensor& gamma);
// SiLU(channel_rms_norm(x, gamma)) in one pass (the VAE's norm → SiLU pairs).
Tensor channel_rms_norm_silu(const Tensor& x, const Tensor& gamma);
// Wan's q/k path fused: RMSNorm over the full row x [L, H·D] (normalized value rounded to bf16,
// then times weight), then the 3D RoPE of each head; bf16 [L, H, D] out, ready for attention.
Tensor rms_norm_rope(const Tensor& x, const Tensor& weight, float eps, int64_t heads, int64_t F,
                     int64_t Hg, int64_t Wg);

// rope.cu (f32 out, as the reference casts the rotated value to f32)
Tensor rope_3d(const Tensor& x, int64_t F, int64_t Hg, int64_t Wg);

// elementwise.cu
enum class Binary { Add, Mul };
Tensor binary(const Tensor& a, const Tensor& b, Binary op);
Tensor axpby(const Tensor& a, float alpha, const Tensor& b, float beta);
enum class Unary { SiLU, GeluTanh, GeluErf };
Tensor unary(const Tensor& x, Unary op);
Tensor clamp(const Tensor& x, float lo, float hi);
void gated_add_(Tensor& x, const Tensor& y, const Tensor& gate);
void add_(Tensor& x, const Tensor& y);

// attention.cu. The own Hopper flash kernel or cuDNN's fused flash attention (bf16, head dims multiples
// of 8 up to 256; an additive bias [H, Lq, Lk] through its graph API) when available, else the backend's
// own general kernel, which also handles key masks. X2V_CUDA_VERBOSE=1 prints which cuDNN path each
// shape got.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& bias,
                 const Tensor& key_mask);
// Auto: the own Hopper flash kernel (flash_attention.cu: head dim 128, no bias or mask, sm_90a) for
// long key sequences, where it measures faster than cuDNN; cuDNN's fused kernel for the rest it takes;
// the backend's own general kernel otherwise.
enum class AttnImpl { Auto, Cudnn, Flash, Own };
// For tests and benchmarks: force one implementation (Cudnn and Flash fail if they cannot run the case).
Tensor attention_with(AttnImpl impl, const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                      const Tensor& bias, const Tensor& key_mask);
// The implementation ops::attention uses from now on for plain attention (no bias or mask, head dim
// 128), so benchmarks can compare whole models on one implementation; Auto restores the default.
void set_attention_impl(AttnImpl impl);
// The cuDNN library loaded at run time (e.g. 91400), or 0 in builds without cuDNN.
int cudnn_version();

// flash_attention.cu. False (with the reason) where the kernel cannot run the case.
struct FlashOptions {
  // ≥ 1 (for checks): every query tile's keys in that many ranges, merged after, instead of the
  // automatic schedule (flash_schedule.h), which splits only the last, partly full round of CTAs.
  int force_parts = 0;
  // Query tiles run in pairs that share their K/V loads (cluster launch) where the device allows;
  // false runs every CTA alone (for checks and benchmarks).
  bool pairs = true;
};
bool flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, Tensor* out, std::string* why,
                     const FlashOptions& opt = {});
// The schedule flash_attention runs for these sizes (for checks and reports).
fa3::Schedule flash_plan(int64_t Lq, int64_t Lk, int64_t H, const FlashOptions& opt = {});

// layout.cu
Tensor permute(const Tensor& x, const std::vector<int>& perm);
Tensor concat(const std::vector<Tensor>& xs, int dim);
Tensor narrow(const Tensor& x, int dim, int64_t begin, int64_t end);
Tensor index_select(const Tensor& x, int dim, const Tensor& index);  // index: device int32/int64
Tensor interleave_parities(const Tensor& y);  // any dtype (moves elements)

// conv.cu (cuDNN convolution; asymmetric/causal padding applied by an explicit pad pass). Each
// shape's algorithm is the fastest measured whose scratch fits the limit (default 2 GiB; the limit
// is part of each shape's cached plan).
void set_conv_workspace_limit(size_t bytes);
size_t conv_workspace_limit();
Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 3> stride,
              std::array<int, 6> pad, const Tensor& residual = {});
void conv3d_add_(Tensor& acc, const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 3> stride,
                 std::array<int, 6> pad);
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 2> stride,
              std::array<int, 4> pad);
Tensor upsample_nearest2x(const Tensor& x);

}  // namespace x2v::ops::cuda
