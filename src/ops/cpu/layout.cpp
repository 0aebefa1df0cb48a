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

}  // namespace x2v::ops::cpu
