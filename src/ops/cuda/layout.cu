// Layout ops: permute, concat, narrow, index_select. Dtype-agnostic (they move elements of 1, 2, 4 or 8 bytes).
#include <cstring>

#include "ops/cuda/common.cuh"

namespace x2v::ops::cuda {
namespace {

using x2v::cuda::grid_for;
using x2v::cuda::stream;

struct Perm {
  int rank;
  int64_t out_dims[6];
  int64_t in_strides[6];  // input stride of each output dim
};

template <class E>
__global__ void k_permute(const E* x, E* y, int64_t n, Perm p) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = i, src = 0;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t c = r % p.out_dims[d];
      r /= p.out_dims[d];
      src += c * p.in_strides[d];
    }
    y[i] = x[src];
  }
}

template <class F>
void by_size(size_t es, F&& f) {
  switch (es) {
    case 1: f(uint8_t{}); break;
    case 2: f(uint16_t{}); break;
    case 4: f(uint32_t{}); break;
    case 8: f(uint64_t{}); break;
    default: fail(ErrorKind::Unsupported, "CUDA layout op: element size ", es);
  }
}

void copy2d(const Tensor& x, int64_t xs, int64_t xoff, Tensor& y, int64_t ys, int64_t yoff, int64_t outer,
            int64_t inner) {
  if (!outer || !inner) return;
  const size_t es = dtype_size(x.dtype());
  // Whole contiguous blocks: one memcpy on the stream.
  if (xs == inner && ys == inner) {
    X2V_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(y.raw()) + yoff * es, static_cast<const char*>(x.raw()) + xoff * es,
                                   static_cast<size_t>(outer * inner) * es, cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  X2V_CUDA_CHECK(cudaMemcpy2DAsync(static_cast<char*>(y.raw()) + yoff * es, static_cast<size_t>(ys) * es,
                                   static_cast<const char*>(x.raw()) + xoff * es, static_cast<size_t>(xs) * es,
                                   static_cast<size_t>(inner) * es, static_cast<size_t>(outer),
                                   cudaMemcpyDeviceToDevice, stream()));
}

}  // namespace

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  x2v::cuda::require_device(x, "permute", "x");
  const int r = x.dim();
  if (static_cast<int>(perm.size()) != r || r > 6)
    fail(ErrorKind::InvalidArgument, "permute: ", perm.size(), " axes for ", x.desc(), " (rank ≤ 6)");
  std::vector<bool> seen(static_cast<size_t>(r), false);
  Perm p{};
  p.rank = r;
  int64_t stride[6];
  int64_t acc = 1;
  for (int d = r - 1; d >= 0; --d) {
    stride[d] = acc;
    acc *= x.size(d);
  }
  Shape os(static_cast<size_t>(r));
  for (int d = 0; d < r; ++d) {
    const int a = perm[static_cast<size_t>(d)];
    if (a < 0 || a >= r || seen[static_cast<size_t>(a)])
      fail(ErrorKind::InvalidArgument, "permute: bad axis list for ", x.desc());
    seen[static_cast<size_t>(a)] = true;
    os[static_cast<size_t>(d)] = x.size(a);
    p.out_dims[d] = x.size(a);
    p.in_strides[d] = stride[a];
  }
  Tensor y = Tensor::empty(os, x.dtype(), Device::CUDA);
  const int64_t n = y.numel();
  if (!n) return y;
  by_size(dtype_size(x.dtype()), [&](auto e) {
    using E = decltype(e);
    k_permute<<<grid_for(n, 256), 256, 0, stream()>>>(static_cast<const E*>(x.raw()), static_cast<E*>(y.raw()), n, p);
  });
  X2V_LAUNCH_CHECK();
  return y;
}

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  if (xs.empty()) fail(ErrorKind::InvalidArgument, "concat: no tensors");
  const Tensor& f = xs[0];
  x2v::cuda::require_device(f, "concat", "xs[0]");
  const int r = f.dim();
  if (dim < 0) dim += r;
  if (dim < 0 || dim >= r) fail(ErrorKind::InvalidArgument, "concat: dim out of range for ", f.desc());
  Shape os = f.shape();
  os[static_cast<size_t>(dim)] = 0;
  for (const Tensor& t : xs) {
    x2v::cuda::require_device(t, "concat", "input");
    bool ok = t.dim() == r && t.dtype() == f.dtype();
    for (int d = 0; ok && d < r; ++d)
      if (d != dim && t.size(d) != f.size(d)) ok = false;
    if (!ok) fail(ErrorKind::InvalidArgument, "concat: ", t.desc(), " does not match ", f.desc(), " along dim ", dim);
    os[static_cast<size_t>(dim)] += t.size(dim);
  }
  Tensor y = Tensor::empty(os, f.dtype(), Device::CUDA);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= f.size(d);
  for (int d = dim + 1; d < r; ++d) inner *= f.size(d);
  const int64_t ys = os[static_cast<size_t>(dim)] * inner;
  int64_t off = 0;
  for (const Tensor& t : xs) {
    const int64_t w = t.size(dim) * inner;
    copy2d(t, w, 0, y, ys, off, outer, w);
    off += w;
  }
  return y;
}

Tensor narrow(const Tensor& x, int dim, int64_t begin, int64_t end) {
  x2v::cuda::require_device(x, "narrow", "x");
  const int r = x.dim();
  if (dim < 0) dim += r;
  if (dim < 0 || dim >= r || begin < 0 || end < begin || end > x.size(dim))
    fail(ErrorKind::InvalidArgument, "narrow: [", begin, ", ", end, ") along dim ", dim, " of ", x.desc());
  Shape os = x.shape();
  os[static_cast<size_t>(dim)] = end - begin;
  Tensor y = Tensor::empty(os, x.dtype(), Device::CUDA);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= x.size(d);
  for (int d = dim + 1; d < r; ++d) inner *= x.size(d);
  copy2d(x, x.size(dim) * inner, begin * inner, y, (end - begin) * inner, 0, outer, (end - begin) * inner);
  return y;
}

namespace {
// out[o, n, i] = x[o, index[n], i]; an index out of [0, D) gives zeros (device indices are unchecked).
template <class E, class I>
__global__ void k_index_select(const E* x, const I* index, E* y, int64_t outer, int64_t D, int64_t N, int64_t inner) {
  const int64_t n_all = outer * N * inner;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n_all; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t % inner, r = t / inner, n = r % N, o = r / N;
    const int64_t j = static_cast<int64_t>(index[n]);
    y[t] = j >= 0 && j < D ? x[(o * D + j) * inner + i] : E{};
  }
}
}  // namespace

Tensor index_select(const Tensor& x, int dim, const Tensor& index) {
  x2v::cuda::require_device(x, "index_select", "x");
  x2v::cuda::require_device(index, "index_select", "index");
  if (dim < 0 || dim >= x.dim() || index.dim() != 1 || (index.dtype() != DType::I32 && index.dtype() != DType::I64))
    fail(ErrorKind::InvalidArgument, "index_select: ", x.desc(), " along ", dim, " by ", index.desc());
  Shape os = x.shape();
  const int64_t N = index.numel(), D = x.size(dim);
  os[static_cast<size_t>(dim)] = N;
  Tensor y = Tensor::empty(os, x.dtype(), Device::CUDA);
  if (!y.numel()) return y;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= x.size(d);
  for (int d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  by_size(dtype_size(x.dtype()), [&](auto e) {
    using E = decltype(e);
    auto launch = [&](const auto* ip) {
      k_index_select<<<grid_for(y.numel(), 256), 256, 0, stream()>>>(static_cast<const E*>(x.raw()), ip,
                                                                     static_cast<E*>(y.raw()), outer, D, N, inner);
    };
    if (index.dtype() == DType::I64)
      launch(static_cast<const int64_t*>(index.raw()));
    else
      launch(static_cast<const int32_t*>(index.raw()));
  });
  X2V_LAUNCH_CHECK();
  return y;
}

}  // namespace x2v::ops::cuda
