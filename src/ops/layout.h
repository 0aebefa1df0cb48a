#pragma once

#include <vector>

#include "core/tensor.h"

namespace x2v::ops {

// out = x.permute(perm) made contiguous (any rank ≤ 6).
Tensor permute(const Tensor& x, const std::vector<int>& perm);
// Concatenate along `dim`; all other dims equal.
Tensor concat(const std::vector<Tensor>& xs, int dim);
// A contiguous copy of x[..., begin:end, ...] along `dim`.
Tensor narrow(const Tensor& x, int dim, int64_t begin, int64_t end);

}  // namespace x2v::ops
