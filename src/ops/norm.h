#pragma once

#include "core/tensor.h"

namespace x2v::ops {

// LayerNorm over the last dim, statistics in f32. weight/bias may be undefined (no affine).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);

// Wan's modulated norm, fused: LN(x)·(1 + scale) + shift (LN without affine).
// x [L, D]; shift/scale [D] (one row for all tokens) or [L, D] (per token, Wan2.2).
Tensor layer_norm_modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, float eps);

// A residual update y·gate for the fused norms below: gate undefined means 1, y undefined means no
// update; gate is one row [D] or one row per token [L, D].
struct Residual {
  Tensor y, gate;
};

// Residual updates fused with the norm that follows them, so that the f32 residual stream x [L, D] is
// read once for both: v = x + r₁ + r₂ (each r = y·gate, added in that order in f32, as the reference
// adds them one at a time), then the norm of v in dtype `out`:
//   add_layer_norm:          LN(v)·weight + bias; x itself is not changed. The DiT's cross-attention
//                            norm: its update is applied with the next one (r₁ of the FFN's norm),
//                            which saves a write of the stream per block for a second read of y.
//   add_layer_norm_modulate: LN(v)·(1 + scale) + shift, and x = v in place.
// x must be f32. The CPU backend computes in f32 and converts to `out`; CUDA writes `out` directly
// (bf16 where the next op is a matmul, which would round its input to bf16 anyway).
Tensor add_layer_norm(const Tensor& x, const Residual& r, const Tensor& weight, const Tensor& bias, float eps,
                      DType out);
Tensor add_layer_norm_modulate(Tensor& x, const Residual& r1, const Residual& r2, const Tensor& shift,
                               const Tensor& scale, float eps, DType out);

// RMSNorm over the last dim: y = round_to(x.dtype, x·rsqrt(mean(x²) + eps)) · weight.
// (WanRMSNorm and T5LayerNorm; the normalized value is cast to `x`'s dtype before the weight multiply,
// which matters only for bf16 inputs.)
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps);

// The VAE's RMS_norm: x [C, N] (channels first, N = any flattened spatial extent);
// y[c, n] = x[c, n] / max(‖x[:, n]‖₂, 1e-12) · sqrt(C) · gamma[c].
Tensor channel_rms_norm(const Tensor& x, const Tensor& gamma);
// silu(channel_rms_norm(x, gamma)) in one pass: the pre-activation that starts every VAE residual
// branch and head. Same values as the two ops in sequence (bit-identical on the CPU).
Tensor channel_rms_norm_silu(const Tensor& x, const Tensor& gamma);

}  // namespace x2v::ops
