#pragma once

#include <array>

#include "core/tensor.h"

namespace x2v::ops {

// 3D convolution over one sample, channels first: x [Cin, T, H, W], w [Cout, Cin, kt, kh, kw],
// bias [Cout] (may be undefined). Zero padding given explicitly per side (causal convs pad time in
// front only): pad = {t_front, t_back, h_top, h_bottom, w_left, w_right}; stride = {st, sh, sw}.
// `residual`, if given, is added to the output (a residual connection fused into the convolution:
// [Cout, To, Ho, Wo], the output's shape).
Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 3> stride,
              std::array<int, 6> pad, const Tensor& residual = {});
// acc += conv3d(x, w, bias, stride, pad), in place: the residual form for a caller that owns the
// residual and needs it no more (no output allocation; acc has the output's shape and x's dtype).
void conv3d_add_(Tensor& acc, const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 3> stride,
                 std::array<int, 6> pad);

// 2D convolution: x [Cin, H, W], w [Cout, Cin, kh, kw]; pad = {top, bottom, left, right}.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 2> stride,
              std::array<int, 4> pad);

// Nearest-neighbour ×2 upsampling of the last two dims: x [..., H, W] → [..., 2H, 2W].
Tensor upsample_nearest2x(const Tensor& x);

}  // namespace x2v::ops
