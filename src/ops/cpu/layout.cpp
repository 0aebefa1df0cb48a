#include <cstdint>
#include <cstring>

#include "ops/cpu/cpu.h"

namespace x2v::ops::cpu {

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  const int n = x.dim();
  Shape os(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) os[static_cast<size_t>(i)] = x.size(perm[static_cast<size_t>(i)]);
  Tensor y = Tensor::empty(os, x.dtype());
  // Input strides (elements), permuted into output order.
  std::vector<int64_t> in_stride(static_cast<size_t>(n), 1);
  for (int i = n - 2; i >= 0; --i) in_stride[static_cast<size_t>(i)] = in_stride[static_cast<size_t>(i + 1)] * x.size(i + 1);
  std::vector<int64_t> st(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) st[static_cast<size_t>(i)] = in_stride[static_cast<size_t>(perm[static_cast<size_t>(i)])];
  const size_t es = dtype_size(x.dtype());
  const auto* src = static_cast<const char*>(x.raw());
  auto* dst = static_cast<char*>(y.raw());
  const int64_t total = y.numel();
  const int64_t inner = n ? os[static_cast<size_t>(n - 1)] : 1;
  const int64_t inner_stride = n ? st[static_cast<size_t>(n - 1)] : 1;
#pragma omp parallel for if (total > 65536)
  for (int64_t row = 0; row < (inner ? total / inner : 0); ++row) {
    // Decode the outer index of this output row into an input offset.
    int64_t rem = row, off = 0;
    for (int i = n - 2; i >= 0; --i) {
      off += (rem % os[static_cast<size_t>(i)]) * st[static_cast<size_t>(i)];
      rem /= os[static_cast<size_t>(i)];
    }
    char* d = dst + static_cast<size_t>(row * inner) * es;
    if (inner_stride == 1) {
      std::memcpy(d, src + static_cast<size_t>(off) * es, static_cast<size_t>(inner) * es);
    } else {
      for (int64_t j = 0; j < inner; ++j)
        std::memcpy(d + static_cast<size_t>(j) * es, src + static_cast<size_t>(off + j * inner_stride) * es, es);
    }
  }
  return y;
}

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  const Tensor& a = xs[0];
  Shape os = a.shape();
  int64_t total = 0;
  for (const auto& t : xs) total += t.size(dim);
  os[static_cast<size_t>(dim)] = total;
  Tensor y = Tensor::empty(os, a.dtype());
  int64_t outer = 1;
  for (int i = 0; i < dim; ++i) outer *= a.size(i);
  const size_t es = dtype_size(a.dtype());
  auto* dst = static_cast<char*>(y.raw());
  const size_t out_row = static_cast<size_t>(y.numel() / (outer ? outer : 1)) * es;
  size_t col = 0;
  for (const auto& t : xs) {
    const size_t row = static_cast<size_t>(outer ? t.numel() / outer : 0) * es;
    const auto* src = static_cast<const char*>(t.raw());
    for (int64_t o = 0; o < outer; ++o) std::memcpy(dst + static_cast<size_t>(o) * out_row + col, src + static_cast<size_t>(o) * row, row);
    col += row;
  }
  return y;
}

Tensor narrow(const Tensor& x, int dim, int64_t begin, int64_t end) {
  Shape os = x.shape();
  os[static_cast<size_t>(dim)] = end - begin;
  Tensor y = Tensor::empty(os, x.dtype());
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= x.size(i);
  for (int i = dim + 1; i < x.dim(); ++i) inner *= x.size(i);
  const size_t es = dtype_size(x.dtype());
  const auto* src = static_cast<const char*>(x.raw());
  auto* dst = static_cast<char*>(y.raw());
  const size_t in_row = static_cast<size_t>(x.size(dim) * inner) * es;
  const size_t out_row = static_cast<size_t>((end - begin) * inner) * es;
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + static_cast<size_t>(o) * out_row, src + static_cast<size_t>(o) * in_row + static_cast<size_t>(begin * inner) * es, out_row);
  return y;
}

Tensor index_select(const Tensor& x, int dim, const Tensor& index) {
  Shape os = x.shape();
  const int64_t N = index.numel();
  os[static_cast<size_t>(dim)] = N;
  Tensor y = Tensor::empty(os, x.dtype());
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= x.size(i);
  for (int i = dim + 1; i < x.dim(); ++i) inner *= x.size(i);
  const size_t es = dtype_size(x.dtype()), row = static_cast<size_t>(inner) * es;
  const auto* src = static_cast<const char*>(x.raw());
  auto* dst = static_cast<char*>(y.raw());
  const int64_t* ip = index.data<int64_t>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t n = 0; n < N; ++n)
      std::memcpy(dst + static_cast<size_t>(o * N + n) * row, src + static_cast<size_t>(o * x.size(dim) + ip[n]) * row, row);
  return y;
}

namespace {
template <class E>
void interleave_rows(const E* y, E* out, int64_t C, int64_t planes, int64_t H, int64_t W) {
  const int64_t Hy = H + 1, Wy = W + 1, rows = C * planes * 2 * H;
#pragma omp parallel for if (rows * W > (1 << 18))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t R = r % (2 * H), cp = r / (2 * H), i = R / 2, py = R % 2;
    // Parity p's rows start at plane (p·C·planes + cp) of y; px = 1 also starts one column further in.
    const E* y0 = y + ((2 * py) * C * planes + cp) * Hy * Wy + (i + py) * Wy;
    const E* y1 = y + ((2 * py + 1) * C * planes + cp) * Hy * Wy + (i + py) * Wy + 1;
    E* o = out + r * 2 * W;
    for (int64_t j = 0; j < W; ++j) {
      o[2 * j] = y0[j];
      o[2 * j + 1] = y1[j];
    }
  }
}
}  // namespace

Tensor interleave_parities(const Tensor& y) {
  const int64_t C = y.size(0) / 4, H = y.size(-2) - 1, W = y.size(-1) - 1;
  Shape os = y.shape();
  os[0] = C;
  os[os.size() - 2] = 2 * H;
  os.back() = 2 * W;
  Tensor out = Tensor::empty(os, y.dtype());
  if (out.numel() == 0) return out;
  // Each of the 4·C channels holds `planes` frames (the dims between channels and rows).
  const int64_t planes = y.numel() / (y.size(0) * (H + 1) * (W + 1));
  switch (dtype_size(y.dtype())) {
    case 1: interleave_rows(static_cast<const uint8_t*>(y.raw()), static_cast<uint8_t*>(out.raw()), C, planes, H, W); break;
    case 2: interleave_rows(static_cast<const uint16_t*>(y.raw()), static_cast<uint16_t*>(out.raw()), C, planes, H, W); break;
    case 4: interleave_rows(static_cast<const uint32_t*>(y.raw()), static_cast<uint32_t*>(out.raw()), C, planes, H, W); break;
    default: interleave_rows(static_cast<const uint64_t*>(y.raw()), static_cast<uint64_t*>(out.raw()), C, planes, H, W); break;
  }
  return out;
}

}  // namespace x2v::ops::cpu
