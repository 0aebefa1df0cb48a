// The backend's Hopper flash attention (flash_attention_sm90.cuh) for tensors.
#include <string>

#include "ops/cuda/common.cuh"
#include "ops/cuda/flash_attention_sm90.cuh"

namespace x2v::ops::cuda {
namespace {

// Writes 1 only where the kernel bodies were compiled (an sm_90a build): a build for another
// architecture gets empty kernels, which must never be launched.
__global__ void probe_sm90a(int* flag) {
#ifdef X2V_FA3_DEVICE
  *flag = 1;
#else
  *flag = 0;
#endif
}

bool sm90a_available() {
  static const bool ok = [] {
    if (x2v::cuda::compute_capability() != 90) return false;
    Tensor flag = Tensor::zeros({1}, DType::I32, Device::CUDA);
    probe_sm90a<<<1, 1, 0, x2v::cuda::stream()>>>(static_cast<int*>(flag.raw()));
    if (cudaGetLastError() != cudaSuccess) return false;  // no sm_90 code in this build
    return flag.to(Device::CPU).data<int32_t>()[0] == 1;
  }();
  return ok;
}

}  // namespace

fa3::Schedule flash_plan(int64_t Lq, int64_t Lk, int64_t H, const FlashOptions& opt) {
  const int pair_slots = opt.pairs && sm90a_available() ? fa3::pair_slots() : 0;
  return fa3::schedule_attention(Lq, Lk, H, fa3::kQueryTile, fa3::kKeyTile,
                                 pair_slots > 0 ? pair_slots : x2v::cuda::sm_count(), opt.force_parts, pair_slots > 0);
}

bool flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, Tensor* out, std::string* why,
                     const FlashOptions& opt) {
  const int64_t Lq = q.size(0), H = q.size(1), Lk = k.size(0);
  if (q.size(2) != fa3::kHeadDim || v.size(2) != fa3::kHeadDim) {
    *why = "the flash kernel takes head dim 128 only";
    return false;
  }
  if (Lq > INT32_MAX || Lk > INT32_MAX || H > INT32_MAX) {
    *why = "sequence or head count past the kernel's 32-bit indexing";
    return false;
  }
  if (!sm90a_available()) {
    *why = "the flash kernel needs an sm_90a build on a compute capability 9.0 device";
    return false;
  }
  Tensor qb = x2v::cuda::as_bf16(q), kb = x2v::cuda::as_bf16(k), vb = x2v::cuda::as_bf16(v);
  Tensor ob = Tensor::empty({Lq, H, fa3::kHeadDim}, DType::BF16, Device::CUDA);
  const fa3::Schedule sched = flash_plan(Lq, Lk, H, opt);
  const size_t part_bytes = fa3::partial_bytes(sched);
  Tensor partial = part_bytes ? Tensor::empty({static_cast<int64_t>(part_bytes)}, DType::U8, Device::CUDA) : Tensor();
  const char* err = fa3::attention(static_cast<const __nv_bfloat16*>(qb.raw()), static_cast<const __nv_bfloat16*>(kb.raw()),
                                   static_cast<const __nv_bfloat16*>(vb.raw()), static_cast<__nv_bfloat16*>(ob.raw()),
                                   static_cast<int>(Lq), static_cast<int>(Lk), static_cast<int>(H), scale, sched,
                                   part_bytes ? partial.raw() : nullptr, x2v::cuda::stream());
  if (err) {
    *why = err;
    return false;
  }
  X2V_LAUNCH_CHECK();
  *out = q.dtype() == DType::BF16 ? ob : x2v::cuda::convert(ob, q.dtype());
  return true;
}

}  // namespace x2v::ops::cuda
