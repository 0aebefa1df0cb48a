#pragma once

#include "core/tensor.h"

namespace x2v::ops {

// Same-shape elementwise ops; `b` may also be a row [D] broadcast over a [.., D] `a`.
Tensor add(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, float s);                 // a·s
Tensor axpby(const Tensor& a, float alpha, const Tensor& b, float beta);  // alpha·a + beta·b
Tensor silu(const Tensor& x);
Tensor gelu_tanh(const Tensor& x);
Tensor gelu_erf(const Tensor& x);
Tensor clamp(const Tensor& x, float lo, float hi);

// x += y · gate, in place on x (f32 residual stream). gate: [D] broadcast over rows of x [L, D],
// or [L, D] (per token).
void gated_add_(Tensor& x, const Tensor& y, const Tensor& gate);
// x += y, in place (x f32; on CUDA any float dtype).
void add_(Tensor& x, const Tensor& y);

}  // namespace x2v::ops
