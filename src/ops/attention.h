#pragma once

#include "core/tensor.h"

namespace x2v::ops {

// Softmax attention, one sequence: q [Lq, H, D], k/v [Lk, H, D] → out [Lq, H, D].
// logits = scale · q·kᵀ (+ bias[H, Lq, Lk] if given); keys j with key_mask[j] == 0 are excluded
// (filled with the dtype's lowest value, as the references do). Softmax in f32.
// CUDA: bf16 q/k/v (f32 inputs are rounded to bf16, as the reference's flash_attention does).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                 const Tensor& bias = {}, const Tensor& key_mask = {});

}  // namespace x2v::ops
