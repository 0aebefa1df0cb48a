#pragma once

#include "core/tensor.h"

namespace x2v::ops {

// Bicubic resize with PyTorch's F.interpolate semantics (mode='bicubic', A = -0.75,
// align_corners=false, no antialias, border taps clamped, no output clamping):
// x [C, H, W] -> [C, oh, ow].
Tensor resize_bicubic(const Tensor& x, int64_t oh, int64_t ow);

}  // namespace x2v::ops
