#pragma once

#include "core/tensor.h"

namespace x2v::ops {

// Wan's 3D RoPE (wan-spec §1.5): x [L, H, D] with L = F·Hg·Wg tokens in (f, h, w) row-major
// order (tokens past F·Hg·Wg are left unrotated), D = head_dim. Adjacent pairs (2c, 2c+1) are
// rotated; the first d_t/2 pairs by f, the next d_h/2 by h, the last d_w/2 by w, with
// freq_j = 10000^(−2j/d_axis). Angles computed in float64. Returns a new f32 tensor.
Tensor rope_3d(const Tensor& x, int64_t F, int64_t Hg, int64_t Wg);

// Wan's q/k path in one op: rms_norm over the whole row of x [L, H·D] (L = F·Hg·Wg), then rope_3d
// of each of the H heads → [L, H, D]. CPU: f32 out. CUDA: bf16 out (the attention operand dtype),
// the normalized value rounded to x's dtype before the weight as rms_norm does.
Tensor rms_norm_rope(const Tensor& x, const Tensor& weight, float eps, int64_t heads, int64_t F, int64_t Hg,
                     int64_t Wg);

}  // namespace x2v::ops
