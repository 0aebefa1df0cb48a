// The CUDA runtime of the backend: one device, one stream, a caching allocator, library handles.
//
// Why a caching allocator: a DiT forward allocates and frees the same few activation sizes thousands
// of times; cudaMalloc/cudaFree synchronize the device and cost tens of microseconds each. Freed
// blocks go to a free list by rounded size and are handed out again in stream order, which is safe
// because every op runs on the one backend stream.
#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>

#include "ops/cuda/common.cuh"

namespace x2v::cuda {

// Dtype conversion on the device, queued on the stream; false for a pair it does not handle.
bool convert_into(void* dst, DType to, const void* src, DType from, int64_t n);

namespace {

constexpr size_t kSmallLimit = 1 << 20;  // below: round to 512 B; above: round to 2 MiB
size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes < kSmallLimit) return (bytes + 511) / 512 * 512;
  const size_t g = size_t(2) << 20;
  return (bytes + g - 1) / g * g;
}

struct Context {
  std::once_flag once;
  bool ok = false;
  int device = 0;
  cudaDeviceProp prop{};
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
};
Context& ctx() {
  static Context c;
  return c;
}

class CachingAllocator final : public DeviceAllocator {
 public:
  void* allocate(size_t bytes) override {
    init();
    const size_t n = round_size(bytes);
    std::lock_guard<std::mutex> lk(mu_);
    // Best fit among cached blocks, but never more than 1/8 larger (keeps the peak honest).
    auto it = free_.lower_bound(n);
    if (it != free_.end() && it->first <= n + n / 8) {
      void* p = it->second;
      block_size_[p] = it->first;
      stats_.in_use += it->first;
      free_.erase(it);
      stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
      if (poison_) X2V_CUDA_CHECK(cudaMemsetAsync(p, 0xFF, n, ctx().stream));
      return p;
    }
    if (stats_.budget && stats_.reserved + n > stats_.budget) release_cache_locked();
    if (stats_.budget && stats_.reserved + n > stats_.budget)
      fail(ErrorKind::OutOfMemory, "CUDA allocation of ", bytes, " bytes would exceed the memory budget of ",
           stats_.budget, " bytes (", stats_.in_use, " in use); raise the budget or lower the resolution");
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, n);
    if (e != cudaSuccess) {
      cudaGetLastError();
      release_cache_locked();
      e = cudaMalloc(&p, n);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      size_t fr = 0, tot = 0;
      cudaMemGetInfo(&fr, &tot);
      fail(ErrorKind::OutOfMemory, "CUDA allocation of ", bytes, " bytes failed (", stats_.in_use,
           " bytes in use by x2v, ", fr, " of ", tot, " free on the device): use a smaller model, "
           "resolution or offloading");
    }
    ++stats_.cudamalloc_calls;
    stats_.reserved += n;
    stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
    stats_.in_use += n;
    stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
    block_size_[p] = n;
    if (poison_) X2V_CUDA_CHECK(cudaMemsetAsync(p, 0xFF, n, ctx().stream));
    return p;
  }

  void release(void* p, size_t) override {
    if (!p) return;
    std::lock_guard<std::mutex> lk(mu_);
    auto it = block_size_.find(p);
    if (it == block_size_.end()) return;  // not ours: a bug elsewhere, but never free twice
    stats_.in_use -= it->second;
    free_.emplace(it->second, p);
    block_size_.erase(it);
  }

  void copy(void* dst, Device dd, const void* src, Device sd, size_t bytes) override {
    init();
    cudaMemcpyKind k = dd == Device::CUDA ? (sd == Device::CUDA ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                          : cudaMemcpyDeviceToHost;
    X2V_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, k, ctx().stream));
    // Host memory is used (or freed) by the caller right after the call; device copies stay queued.
    if (k != cudaMemcpyDeviceToDevice) X2V_CUDA_CHECK(cudaStreamSynchronize(ctx().stream));
  }

  bool convert(void* dst, DType dt, const void* src, DType st, size_t n) override {
    return convert_into(dst, dt, src, st, static_cast<int64_t>(n));
  }

  void fill_zero(void* p, size_t bytes) override {
    init();
    X2V_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, ctx().stream));
  }

  MemStats stats() {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.peak_in_use = stats_.in_use;
    stats_.peak_reserved = stats_.reserved;
  }
  void set_budget(size_t b) {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.budget = b;
  }
  void empty_cache() {
    std::lock_guard<std::mutex> lk(mu_);
    release_cache_locked();
  }
  void set_poison(bool on) { poison_ = on; }

 private:
  void release_cache_locked() {
    if (free_.empty()) return;
    cudaStreamSynchronize(ctx().stream);
    for (auto& [n, p] : free_) {
      cudaFree(p);
      stats_.reserved -= n;
    }
    free_.clear();
  }

  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  std::map<void*, size_t> block_size_;
  MemStats stats_;
  bool poison_ = false;
};

CachingAllocator& allocator() {
  static CachingAllocator a;
  return a;
}

// Registration only: no CUDA call happens before the first allocation or op, so a CUDA build still
// runs on a machine without a GPU as long as it stays on the CPU.
struct Registrar {
  Registrar() { set_device_allocator(Device::CUDA, &allocator()); }
} g_registrar;

template <class T>
__global__ void k_fill_uniform(T* p, int64_t n, uint64_t seed, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    // splitmix64 of (seed, index): independent of the launch shape.
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i) + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    float u = static_cast<float>(z >> 40) * (1.f / 16777216.f);
    dev::st(p, i, lo + (hi - lo) * u);
  }
}

template <class S, class D>
__global__ void k_convert(const S* s, D* d, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    d[i] = static_cast<D>(static_cast<float>(s[i]));
}
template <>
__global__ void k_convert<__nv_bfloat16, float>(const __nv_bfloat16* s, float* d, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    d[i] = __bfloat162float(s[i]);
}
template <>
__global__ void k_convert<float, __nv_bfloat16>(const float* s, __nv_bfloat16* d, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    d[i] = __float2bfloat16_rn(s[i]);
}
template <>
__global__ void k_convert<float, __half>(const float* s, __half* d, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    d[i] = __float2half_rn(s[i]);
}
template <>
__global__ void k_convert<__half, float>(const __half* s, float* d, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    d[i] = __half2float(s[i]);
}

// f32 with 8 elements per thread: the bf16 rounding of activations before each GEMM is pure
// bandwidth, so it reads 32 B and writes 16 B per thread.
__global__ void k_f32_to_bf16_vec(const float4* s, uint4* d, int64_t n8) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n8; i += int64_t(gridDim.x) * blockDim.x) {
    float4 a = s[2 * i], b = s[2 * i + 1];
    __nv_bfloat162 r[4] = {__floats2bfloat162_rn(a.x, a.y), __floats2bfloat162_rn(a.z, a.w),
                           __floats2bfloat162_rn(b.x, b.y), __floats2bfloat162_rn(b.z, b.w)};
    d[i] = *reinterpret_cast<uint4*>(r);
  }
}

}  // namespace

bool available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}

void init() {
  Context& c = ctx();
  std::call_once(c.once, [&] {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
      fail(ErrorKind::Device, "no usable CUDA device (",
           e != cudaSuccess ? cudaGetErrorString(e) : "none found",
           "): run on the CPU, or check the driver and CUDA_VISIBLE_DEVICES");
    X2V_CUDA_CHECK(cudaSetDevice(c.device));
    X2V_CUDA_CHECK(cudaGetDeviceProperties(&c.prop, c.device));
    X2V_CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
    X2V_CUBLAS_CHECK(cublasLtCreate(&c.lt));
    c.ok = true;
  });
  if (!c.ok) fail(ErrorKind::Device, "the CUDA backend failed to initialize earlier in this process");
}

#ifdef X2V_WITH_CUDNN
cudnnHandle_t cudnn() {
  static std::once_flag once;
  static cudnnHandle_t h = nullptr;
  std::call_once(once, [] {
    X2V_CUDNN_CHECK(cudnnCreate(&h));
    X2V_CUDNN_CHECK(cudnnSetStream(h, stream()));
  });
  return h;
}
#endif

cudaStream_t stream() {
  init();
  return ctx().stream;
}
cublasLtHandle_t cublaslt() {
  init();
  return ctx().lt;
}
int sm_count() {
  init();
  return ctx().prop.multiProcessorCount;
}

int compute_capability() {
  init();
  return 10 * ctx().prop.major + ctx().prop.minor;
}

Tensor workspace(size_t bytes) { return Tensor::empty({static_cast<int64_t>(std::max<size_t>(bytes, 1))}, DType::U8, Device::CUDA); }

void synchronize() { X2V_CUDA_CHECK(cudaStreamSynchronize(stream())); }

MemStats mem_stats() { return allocator().stats(); }
void reset_peak() { allocator().reset_peak(); }
void set_memory_budget(size_t bytes) { allocator().set_budget(bytes); }
void empty_cache() { allocator().empty_cache(); }
void set_poison_allocations(bool on) { allocator().set_poison(on); }

std::string device_description() {
  init();
  const cudaDeviceProp& p = ctx().prop;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s, %d SMs, cc %d.%d, %.1f GiB", p.name, p.multiProcessorCount, p.major, p.minor,
                static_cast<double>(p.totalGlobalMem) / (1 << 30));
  return buf;
}

Timer::Timer() {
  init();
  cudaEvent_t a, b;
  X2V_CUDA_CHECK(cudaEventCreate(&a));
  X2V_CUDA_CHECK(cudaEventCreate(&b));
  a_ = a;
  b_ = b;
}
Timer::~Timer() {
  cudaEventDestroy(static_cast<cudaEvent_t>(a_));
  cudaEventDestroy(static_cast<cudaEvent_t>(b_));
}
void Timer::start() { X2V_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(a_), stream())); }
float Timer::stop_ms() {
  X2V_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(b_), stream()));
  X2V_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(b_)));
  float ms = 0;
  X2V_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(a_), static_cast<cudaEvent_t>(b_)));
  return ms;
}

void require_device(const Tensor& t, const char* op, const char* name) {
  if (!t.defined()) fail(ErrorKind::InvalidArgument, op, ": ", name, " is undefined");
  if (t.device() != Device::CUDA)
    fail(ErrorKind::InvalidArgument, op, ": ", name, " ", t.desc(), " is on the ", device_name(t.device()),
         ", expected a CUDA tensor");
}
void require_float(const Tensor& t, const char* op, const char* name) {
  require_device(t, op, name);
  if (t.dtype() != DType::F32 && t.dtype() != DType::BF16)
    fail(ErrorKind::Unsupported, op, ": ", name, " ", t.desc(), " must be f32 or bf16 on CUDA");
}

void fill_uniform(Tensor& t, uint64_t seed, float lo, float hi) {
  require_float(t, "fill_uniform", "tensor");
  if (!t.numel()) return;
  X2V_DISPATCH_FLOAT(t.dtype(), T, {
    k_fill_uniform<T><<<grid_for(t.numel(), 256, 8192), 256, 0, stream()>>>(static_cast<T*>(t.raw()), t.numel(),
                                                                            seed, lo, hi);
  });
  X2V_LAUNCH_CHECK();
}

void poison(Tensor& t) {
  require_device(t, "poison", "tensor");
  if (t.nbytes()) X2V_CUDA_CHECK(cudaMemsetAsync(t.raw(), 0xFF, t.nbytes(), stream()));
}

bool convert_into(void* dst, DType to, const void* src, DType from, int64_t n) {
  if (!n) return true;
  auto launch = [&](auto* s, auto* d) { k_convert<<<grid_for(n, 256, 8192), 256, 0, stream()>>>(s, d, n); };
  if (from == DType::F32 && to == DType::BF16 && n % 8 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0 &&
      reinterpret_cast<uintptr_t>(dst) % 16 == 0) {
    k_f32_to_bf16_vec<<<grid_for(n / 8, 256, 8192), 256, 0, stream()>>>(static_cast<const float4*>(src),
                                                                        static_cast<uint4*>(dst), n / 8);
  } else if (from == DType::F32 && to == DType::BF16) {
    launch(static_cast<const float*>(src), static_cast<__nv_bfloat16*>(dst));
  } else if (from == DType::BF16 && to == DType::F32) {
    launch(static_cast<const __nv_bfloat16*>(src), static_cast<float*>(dst));
  } else if (from == DType::F32 && to == DType::F16) {
    launch(static_cast<const float*>(src), static_cast<__half*>(dst));
  } else if (from == DType::F16 && to == DType::F32) {
    launch(static_cast<const __half*>(src), static_cast<float*>(dst));
  } else if (from == DType::BF16 && to == DType::F16) {
    launch(static_cast<const __nv_bfloat16*>(src), static_cast<__half*>(dst));
  } else if (from == DType::F16 && to == DType::BF16) {
    launch(static_cast<const __half*>(src), static_cast<__nv_bfloat16*>(dst));
  } else {
    return false;
  }
  X2V_LAUNCH_CHECK();
  return true;
}

Tensor convert(const Tensor& x, DType to) {
  require_device(x, "convert", "x");
  if (x.dtype() == to) return x;
  Tensor y = Tensor::empty(x.shape(), to, Device::CUDA);
  if (!convert_into(y.raw(), to, x.raw(), x.dtype(), x.numel()))
    fail(ErrorKind::Unsupported, "CUDA convert: ", dtype_name(x.dtype()), " to ", dtype_name(to), " is not handled");
  return y;
}

Tensor as_bf16(const Tensor& x) { return convert(x, DType::BF16); }
Tensor as_f32(const Tensor& x) { return convert(x, DType::F32); }

}  // namespace x2v::cuda
