// The VAE's fused norm → activation: kept apart from norm.h so that the op family can grow with the
// VAE without touching the DiT's norms.
#pragma once

#include "core/tensor.h"

namespace x2v::ops {

// silu(channel_rms_norm(x, gamma)) in one pass over x [C, N] (channels first, N = any flattened
// extent): the pre-activation that starts every VAE residual branch and head. Same values as the
// two ops in sequence (bit-identical on the CPU). Output: x's dtype on CUDA, f32 on the CPU.
Tensor channel_rms_norm_silu(const Tensor& x, const Tensor& gamma);

}  // namespace x2v::ops
