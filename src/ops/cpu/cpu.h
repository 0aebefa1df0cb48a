// The CPU reference backend (f32, OpenBLAS + OpenMP). Called only through the dispatching ops in
// src/ops/<family>.cpp, which have already checked shapes and devices.
#pragma once

#include <array>
#include <vector>

#include "ops/linear.h"

namespace x2v::ops::cpu {

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, Act act);
Tensor matmul_nt(const Tensor& a, const Tensor& b);

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);
Tensor layer_norm_modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, float eps);
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps);
Tensor channel_rms_norm(const Tensor& x, const Tensor& gamma);
Tensor channel_rms_norm_silu(const Tensor& x, const Tensor& gamma);

enum class Binary { Add, Mul };
Tensor binary(const Tensor& a, const Tensor& b, Binary op);
Tensor axpby(const Tensor& a, float alpha, const Tensor& b, float beta);
enum class Unary { SiLU, GeluTanh, GeluErf };
Tensor unary(const Tensor& x, Unary op);
Tensor clamp(const Tensor& x, float lo, float hi);
void gated_add_(Tensor& x, const Tensor& y, const Tensor& gate);
void add_(Tensor& x, const Tensor& y);

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& bias,
                 const Tensor& key_mask);

Tensor rope_3d(const Tensor& x, int64_t F, int64_t Hg, int64_t Wg);

Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 3> stride, std::array<int, 6> pad);
Tensor upsample_nearest2x(const Tensor& x);

Tensor permute(const Tensor& x, const std::vector<int>& perm);
Tensor concat(const std::vector<Tensor>& xs, int dim);
Tensor narrow(const Tensor& x, int dim, int64_t begin, int64_t end);
Tensor index_select(const Tensor& x, int dim, const Tensor& index);  // index: checked int64
Tensor interleave_parities(const Tensor& y);

// Activation functions, shared by the fused paths.
float silu(float x);
float gelu_tanh(float x);
float gelu_erf(float x);

}  // namespace x2v::ops::cpu
