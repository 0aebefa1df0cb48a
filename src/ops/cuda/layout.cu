// Layout ops: permute, concat, narrow, index_select. Dtype-agnostic (they move elements of 1, 2, 4 or 8 bytes).
#include <cstdint>
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

namespace {
// Each thread writes V consecutive elements of one output row: 16 bytes at once where the row length
// allows (V = 16 / element size), one element otherwise. A row interleaves two source rows (px = 0 and
// px = 1), which it reads at unit stride: coalesced across the warp, though not vector-aligned, as
// the source rows are W + 1 long.
template <class E, int V>
__global__ void k_interleave_parities(const E* y, E* out, int64_t rows, int64_t CP, int64_t H, int64_t W) {
  const int64_t Hy = H + 1, Wy = W + 1, per_row = 2 * W / V, n = rows * per_row;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = t / per_row, k = t - r * per_row;
    const int64_t R = r % (2 * H), cp = r / (2 * H), i = R >> 1, py = R & 1;
    // Parity (py, px) is channel block 2·py + px of y, each block CP planes of Hy × Wy.
    const E* y0 = y + ((2 * py) * CP + cp) * Hy * Wy + (i + py) * Wy;
    const E* y1 = y0 + CP * Hy * Wy + 1;
    E* o = out + r * 2 * W + k * V;
    if constexpr (V == 1) {
      *o = (k & 1) ? y1[k >> 1] : y0[k >> 1];
    } else {
      alignas(16) E v[V];
      const int64_t j = k * (V / 2);
#pragma unroll
      for (int q = 0; q < V / 2; ++q) {
        v[2 * q] = y0[j + q];
        v[2 * q + 1] = y1[j + q];
      }
      *reinterpret_cast<uint4*>(o) = *reinterpret_cast<const uint4*>(v);
    }
  }
}
}  // namespace

Tensor interleave_parities(const Tensor& y) {
  x2v::cuda::require_device(y, "interleave_parities", "y");
  if (y.dim() < 3 || y.size(0) % 4 != 0 || y.size(-2) < 1 || y.size(-1) < 1)
    fail(ErrorKind::InvalidArgument, "interleave_parities: y ", y.desc(), " is not [4·C, ..., H + 1, W + 1]");
  const int64_t C = y.size(0) / 4, H = y.size(-2) - 1, W = y.size(-1) - 1;
  Shape os = y.shape();
  os[0] = C;
  os[os.size() - 2] = 2 * H;
  os.back() = 2 * W;
  Tensor out = Tensor::empty(os, y.dtype(), Device::CUDA);
  if (!out.numel()) return out;
  const int64_t CP = y.numel() / (4 * (H + 1) * (W + 1)), rows = CP * 2 * H;
  by_size(dtype_size(y.dtype()), [&](auto e) {
    using E = decltype(e);
    constexpr int V = 16 / sizeof(E);
    const auto* yp = static_cast<const E*>(y.raw());
    auto* op = static_cast<E*>(out.raw());
    if ((2 * W) % V == 0 && reinterpret_cast<uintptr_t>(op) % 16 == 0)
      k_interleave_parities<E, V><<<grid_for(rows * 2 * W / V, 256), 256, 0, stream()>>>(yp, op, rows, CP, H, W);
    else
      k_interleave_parities<E, 1><<<grid_for(rows * 2 * W, 256), 256, 0, stream()>>>(yp, op, rows, CP, H, W);
  });
  X2V_LAUNCH_CHECK();
  return out;
}

}  // namespace x2v::ops::cuda
