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
// out[..., n, ...] = x[..., index[n], ...] along `dim` (torch.index_select): index is 1-d int32/int64.
// A host index is checked against x.size(dim) (InvalidArgument) and copied to x's device; an index
// already on the device is not checked, and an entry out of range yields zeros there.
Tensor index_select(const Tensor& x, int dim, const Tensor& index);
// The four phases of a sub-pixel convolution put in place, each one row and column further along
// its own source: y [4·C, ..., H + 1, W + 1] → out [C, ..., 2H, 2W] with
// out[c, ..., 2i + py, 2j + px] = y[(2·py + px)·C + c, ..., i + py, j + px] (see upsample2x_conv3x3).
Tensor interleave_parities(const Tensor& y);

}  // namespace x2v::ops
