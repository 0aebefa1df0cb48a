// Elementwise ops and the gated residual add. All are bandwidth-bound: grid-stride loops, f32 math,
// loads and stores in the tensors' own dtypes (no intermediate conversions through memory).
#include "ops/cuda/common.cuh"

namespace x2v::ops::cuda {
namespace {

using x2v::cuda::grid_for;
using x2v::cuda::stream;

template <class A, class B, class O>
__global__ void k_binary(const A* a, const B* b, O* o, int64_t n, int64_t bn, int op) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float x = dev::ld(a, i), y = dev::ld(b, bn == n ? i : i % bn);
    dev::st(o, i, op == 0 ? x + y : x * y);
  }
}

template <class A, class B, class O>
__global__ void k_axpby(const A* a, float alpha, const B* b, float beta, O* o, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dev::st(o, i, alpha * dev::ld(a, i) + beta * dev::ld(b, i));
}

template <class T>
__global__ void k_unary(const T* x, T* o, int64_t n, int op, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float v = dev::ld(x, i);
    switch (op) {
      case 0: v = dev::silu(v); break;
      case 1: v = dev::gelu_tanh(v); break;
      case 2: v = dev::gelu_erf(v); break;
      default: v = fminf(fmaxf(v, lo), hi); break;
    }
    dev::st(o, i, v);
  }
}

// x[L, D] (f32) += y[L, D] · gate; gate is one row [D] or per token [L, D]. Four elements per thread
// when D allows: this runs twice per block of the DiT over the whole residual stream.
template <class Y, class G>
__global__ void k_gated_add(float* x, const Y* y, const G* g, int64_t n, int64_t D, bool per_row) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float gv = g ? dev::ld(g, per_row ? i : i % D) : 1.f;
    x[i] += dev::ld(y, i) * gv;
  }
}

template <class Y, class G>
__global__ void k_gated_add4(float4* x, const Y* y, const G* g, int64_t n4, int64_t D, bool per_row) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t e = 4 * i;
    const int64_t ge = per_row ? e : e % D;
    float4 v = x[i];
    v.x += dev::ld(y, e + 0) * (g ? dev::ld(g, ge + 0) : 1.f);
    v.y += dev::ld(y, e + 1) * (g ? dev::ld(g, ge + 1) : 1.f);
    v.z += dev::ld(y, e + 2) * (g ? dev::ld(g, ge + 2) : 1.f);
    v.w += dev::ld(y, e + 3) * (g ? dev::ld(g, ge + 3) : 1.f);
    x[i] = v;
  }
}

void check_same(const Tensor& a, const Tensor& b, const char* op) {
  x2v::cuda::require_float(a, op, "a");
  x2v::cuda::require_float(b, op, "b");
  if (a.numel() != b.numel())
    fail(ErrorKind::InvalidArgument, op, ": ", a.desc(), " and ", b.desc(), " differ in size");
}

}  // namespace

Tensor binary(const Tensor& a, const Tensor& b, Binary op) {
  x2v::cuda::require_float(a, "binary", "a");
  x2v::cuda::require_float(b, "binary", "b");
  const int64_t n = a.numel(), bn = b.numel();
  if (!(bn == n || (a.dim() >= 1 && bn == a.size(-1))))
    fail(ErrorKind::InvalidArgument, "add/mul: b ", b.desc(), " is neither the shape of a ", a.desc(),
         " nor one row of it");
  Tensor o = Tensor::empty(a.shape(), a.dtype(), Device::CUDA);
  if (!n) return o;
  X2V_DISPATCH_FLOAT(a.dtype(), A, X2V_DISPATCH_FLOAT(b.dtype(), B, {
    k_binary<<<grid_for(n, 256), 256, 0, stream()>>>(static_cast<const A*>(a.raw()), static_cast<const B*>(b.raw()),
                                                    static_cast<A*>(o.raw()), n, bn, op == Binary::Add ? 0 : 1);
  }));
  X2V_LAUNCH_CHECK();
  return o;
}

Tensor axpby(const Tensor& a, float alpha, const Tensor& b, float beta) {
  check_same(a, b, "axpby");
  Tensor o = Tensor::empty(a.shape(), a.dtype(), Device::CUDA);
  const int64_t n = a.numel();
  if (!n) return o;
  X2V_DISPATCH_FLOAT(a.dtype(), A, X2V_DISPATCH_FLOAT(b.dtype(), B, {
    k_axpby<<<grid_for(n, 256), 256, 0, stream()>>>(static_cast<const A*>(a.raw()), alpha,
                                                   static_cast<const B*>(b.raw()), beta, static_cast<A*>(o.raw()), n);
  }));
  X2V_LAUNCH_CHECK();
  return o;
}

namespace {
Tensor unary_impl(const Tensor& x, int op, float lo, float hi) {
  x2v::cuda::require_float(x, "unary", "x");
  Tensor o = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  const int64_t n = x.numel();
  if (!n) return o;
  X2V_DISPATCH_FLOAT(x.dtype(), T, {
    k_unary<<<grid_for(n, 256), 256, 0, stream()>>>(static_cast<const T*>(x.raw()), static_cast<T*>(o.raw()), n, op,
                                                   lo, hi);
  });
  X2V_LAUNCH_CHECK();
  return o;
}
}  // namespace

Tensor unary(const Tensor& x, Unary op) {
  return unary_impl(x, op == Unary::SiLU ? 0 : op == Unary::GeluTanh ? 1 : 2, 0.f, 0.f);
}
Tensor clamp(const Tensor& x, float lo, float hi) { return unary_impl(x, 3, lo, hi); }

void gated_add_(Tensor& x, const Tensor& y, const Tensor& gate) {
  x2v::cuda::require_device(x, "gated_add_", "x");
  if (x.dtype() != DType::F32) fail(ErrorKind::Unsupported, "gated_add_: the residual x ", x.desc(), " must be f32");
  check_same(x, y, "gated_add_");
  const int64_t n = x.numel(), D = x.dim() ? x.size(-1) : 1;
  bool per_row = false;
  if (gate.defined()) {
    x2v::cuda::require_float(gate, "gated_add_", "gate");
    if (gate.numel() == n && n != D)
      per_row = true;
    else if (gate.numel() != D)
      fail(ErrorKind::InvalidArgument, "gated_add_: gate ", gate.desc(), " is neither [D] nor the shape of x ",
           x.desc());
  }
  if (!n) return;
  const bool vec = n % 4 == 0 && D % 4 == 0;
  auto launch = [&](auto* yp, auto* gp) {
    if (vec)
      k_gated_add4<<<grid_for(n / 4, 256), 256, 0, stream()>>>(static_cast<float4*>(x.raw()), yp, gp, n / 4, D,
                                                              per_row);
    else
      k_gated_add<<<grid_for(n, 256), 256, 0, stream()>>>(static_cast<float*>(x.raw()), yp, gp, n, D, per_row);
  };
  X2V_DISPATCH_FLOAT(y.dtype(), Y, {
    if (!gate.defined())
      launch(static_cast<const Y*>(y.raw()), static_cast<const float*>(nullptr));
    else
      X2V_DISPATCH_FLOAT(gate.dtype(), G, launch(static_cast<const Y*>(y.raw()), static_cast<const G*>(gate.raw())));
  });
  X2V_LAUNCH_CHECK();
}

void add_(Tensor& x, const Tensor& y) {
  if (x.dtype() == DType::F32) {
    gated_add_(x, y, Tensor());
    return;
  }
  check_same(x, y, "add_");
  const int64_t n = x.numel();
  if (!n) return;
  X2V_DISPATCH_FLOAT(x.dtype(), A, X2V_DISPATCH_FLOAT(y.dtype(), B, {
    k_binary<<<grid_for(n, 256), 256, 0, stream()>>>(static_cast<const A*>(x.raw()), static_cast<const B*>(y.raw()),
                                                    static_cast<A*>(x.raw()), n, n, 0);
  }));
  X2V_LAUNCH_CHECK();
}

}  // namespace x2v::ops::cuda
