#pragma once

#include "core/tensor.h"

namespace x2v::ops {

// LayerNorm over the last dim, statistics in f32. weight/bias may be undefined (no affine).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);

// Wan's modulated norm, fused: LN(x)·(1 + scale) + shift (LN without affine).
// x [L, D]; shift/scale [D] (one row for all tokens) or [L, D] (per token, Wan2.2).
Tensor layer_norm_modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, float eps);

// The residual update fused with the norm that follows it (one pass over the f32 residual stream
// instead of two): x += y·gate in place (y undefined: no update; gate undefined: 1; gate a row [D]
// or per token [L, D]), then the norm of the updated x, returned in dtype `out`:
//   add_layer_norm:          LN(x)·weight + bias
//   add_layer_norm_modulate: LN(x)·(1 + scale) + shift
// x must be f32. The CPU backend computes in f32 and converts to `out`; CUDA writes `out` directly
// (bf16 where the next op is a matmul, which would round its input to bf16 anyway).
Tensor add_layer_norm(Tensor& x, const Tensor& y, const Tensor& gate, const Tensor& weight, const Tensor& bias,
                      float eps, DType out);
Tensor add_layer_norm_modulate(Tensor& x, const Tensor& y, const Tensor& gate, const Tensor& shift,
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
