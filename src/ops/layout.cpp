#include "ops/layout.h"

#include "ops/cpu/cpu.h"
#include "ops/dispatch.h"
#ifdef X2V_WITH_CUDA
#include "ops/cuda/cuda.h"
#endif

namespace x2v::ops {

using detail::bad_shape;

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  if (static_cast<int>(perm.size()) != x.dim()) bad_shape("permute", "permutation rank for " + x.desc());
  std::vector<bool> seen(perm.size(), false);
  for (int p : perm) {
    if (p < 0 || p >= x.dim() || seen[static_cast<size_t>(p)]) bad_shape("permute", "not a permutation for " + x.desc());
    seen[static_cast<size_t>(p)] = true;
  }
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::permute(x, perm);
#endif
  if (!x.is_cpu()) fail(ErrorKind::Unsupported, "permute: no ", device_name(x.device()), " implementation");
  return cpu::permute(x, perm);
}

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  if (xs.empty()) bad_shape("concat", "no inputs");
  const Tensor& a = xs[0];
  if (dim < 0) dim += a.dim();
  for (const auto& t : xs) {
    bool ok = t.dim() == a.dim() && t.dtype() == a.dtype() && t.device() == a.device() && dim >= 0 && dim < a.dim();
    for (int i = 0; ok && i < a.dim(); ++i) ok = i == dim || t.size(i) == a.size(i);
    if (!ok) bad_shape("concat", a.desc() + " with " + t.desc() + " along " + std::to_string(dim));
  }
#ifdef X2V_WITH_CUDA
  if (a.device() == Device::CUDA) return cuda::concat(xs, dim);
#endif
  if (!a.is_cpu()) fail(ErrorKind::Unsupported, "concat: no ", device_name(a.device()), " implementation");
  return cpu::concat(xs, dim);
}

Tensor narrow(const Tensor& x, int dim, int64_t begin, int64_t end) {
  if (dim < 0) dim += x.dim();
  if (dim < 0 || dim >= x.dim() || begin < 0 || end < begin || end > x.size(dim))
    bad_shape("narrow", x.desc() + " [" + std::to_string(begin) + ":" + std::to_string(end) + "] along " + std::to_string(dim));
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::narrow(x, dim, begin, end);
#endif
  if (!x.is_cpu()) fail(ErrorKind::Unsupported, "narrow: no ", device_name(x.device()), " implementation");
  return cpu::narrow(x, dim, begin, end);
}

Tensor index_select(const Tensor& x, int dim, const Tensor& index) {
  if (dim < 0) dim += x.dim();
  if (dim < 0 || dim >= x.dim() || !index.defined() || index.dim() != 1 ||
      (index.dtype() != DType::I32 && index.dtype() != DType::I64))
    bad_shape("index_select", x.desc() + " along " + std::to_string(dim) + " by " +
                                  (index.defined() ? index.desc() : std::string("nothing")) + " (a 1-d int32/int64 index)");
  Tensor idx = index;
  if (index.is_cpu()) {
    idx = index.to(DType::I64);
    const int64_t* p = idx.data<int64_t>();
    for (int64_t n = 0; n < idx.numel(); ++n)
      if (p[n] < 0 || p[n] >= x.size(dim))
        fail(ErrorKind::InvalidArgument, "index_select: index ", p[n], " at position ", n, " is outside [0, ",
             x.size(dim), ") of dim ", dim, " of ", x.desc());
    if (!x.is_cpu()) idx = idx.to(x.device());
  } else if (index.device() != x.device()) {
    bad_shape("index_select", "index on " + std::string(device_name(index.device())) + ", x on " + device_name(x.device()));
  }
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::index_select(x, dim, idx);
#endif
  if (!x.is_cpu()) fail(ErrorKind::Unsupported, "index_select: no ", device_name(x.device()), " implementation");
  return cpu::index_select(x, dim, idx);
}

Tensor interleave_parities(const Tensor& y) {
  if (y.dim() < 3 || y.size(0) % 4 != 0 || y.size(-2) < 1 || y.size(-1) < 1)
    bad_shape("interleave_parities", "input " + y.desc() + " (expected [4·C, ..., H + 1, W + 1] with H, W >= 0)");
#ifdef X2V_WITH_CUDA
  if (y.device() == Device::CUDA) return cuda::interleave_parities(y);
#endif
  if (!y.is_cpu()) fail(ErrorKind::Unsupported, "interleave_parities: no ", device_name(y.device()), " implementation");
  return cpu::interleave_parities(y);
}

}  // namespace x2v::ops
