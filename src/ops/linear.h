#pragma once

#include "core/tensor.h"

namespace x2v::ops {

enum class Act { None, SiLU, GeluTanh, GeluErf };

// y[..., N] = act(x[..., K] · w[N, K]ᵀ + bias[N]) — PyTorch Linear layout.
// `bias` may be undefined. Output dtype: `out` if given, else x's dtype.
// CUDA: bf16 operands (f32 inputs are rounded to bf16, as autocast does), f32 accumulation.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = {}, Act act = Act::None,
              DType out = DType::F32);

// c[B, M, N] = a[B, M, K] · b[B, N, K]ᵀ (batched, f32 accumulate). Used where no bias/epilogue exists.
Tensor matmul_nt(const Tensor& a, const Tensor& b);

}  // namespace x2v::ops
