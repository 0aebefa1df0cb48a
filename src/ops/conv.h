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

// conv3d(upsample_nearest2x(x), w, b, {1, 1, 1}, {0, 0, 1, 1, 1, 1}) for a 3×3 spatial kernel, in its
// sub-pixel form: output pixel (2i + py, 2j + px) of the 3×3 conv over the upsampled image reads only
// source pixels i − 1 + py .. i + py and j − 1 + px .. j + px, with the 3×3 taps that land on the same
// source pixel summed. So one 2×2 conv of the low-resolution input (padding 1: zero rows and columns
// of the upsampled image are zero rows and columns of the input), with the four parities' summed
// weights stacked as output channels, gives all four phases, and interleave_parities puts them in
// place. 4/9 of the multiply-adds, and the 4×-larger upsampled input is never made.
struct UpsampleConvWeights {
  Tensor w;  // [4·Cout, Cin, 1, 2, 2], output channel (2·py + px)·Cout + c
  Tensor b;  // [4·Cout]: the bias once per parity (undefined if the conv has none)
};
// From the 3×3 conv's w [Cout, Cin, 3, 3] or [Cout, Cin, 1, 3, 3] and b [Cout] (may be undefined), of
// any dtype and device; the sums are taken in f32 on the host and returned as host f32 tensors, so a
// caller that keeps bf16 weights rounds each summed tap once.
UpsampleConvWeights fold_upsample2x_conv3x3(const Tensor& w, const Tensor& b);
// x [Cin, T, H, W] with folded weights → [Cout, T, 2H, 2W]. Output dtype as conv3d's.
Tensor upsample2x_conv3x3(const Tensor& x, const UpsampleConvWeights& f);

}  // namespace x2v::ops
