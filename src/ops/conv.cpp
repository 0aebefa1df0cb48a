#include "ops/conv.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "ops/cpu/cpu.h"
#include "ops/dispatch.h"
#ifdef X2V_WITH_CUDA
#include "ops/cuda/cuda.h"
#endif

namespace x2v::ops {

using detail::bad_shape;
using detail::host_f32;

namespace {
std::string ints(const int* v, int n) {
  std::string s = "(";
  for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + ")";
}

void require_cpu(const char* op, Device d) {
  if (d != Device::CPU) fail(ErrorKind::Unsupported, op, ": no ", device_name(d), " implementation yet");
}
}  // namespace

namespace {
// The checks every conv3d form shares; returns the output shape [Cout, To, Ho, Wo].
Shape check_conv3d(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 3> stride,
                   std::array<int, 6> pad) {
  if (x.dim() != 4 || w.dim() != 5 || x.size(0) != w.size(1))
    bad_shape(op, "input " + x.desc() + " (expected [Cin, T, H, W]) does not match weight " + w.desc() +
                      " (expected [Cout, Cin, kt, kh, kw])");
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != w.size(0)))
    bad_shape(op, "bias " + bias.desc() + " does not match weight " + w.desc());
  for (int i = 0; i < 3; ++i)
    if (stride[static_cast<size_t>(i)] < 1) bad_shape(op, "stride " + ints(stride.data(), 3) + " must be positive");
  for (int p : pad)
    if (p < 0) bad_shape(op, "padding " + ints(pad.data(), 6) + " must not be negative");
  Shape out{w.size(0)};
  for (int i = 0; i < 3; ++i) {
    const size_t k = static_cast<size_t>(i);
    const int64_t padded = x.size(1 + i) + pad[2 * k] + pad[2 * k + 1];
    if (padded < w.size(2 + i))
      bad_shape(op, "input " + x.desc() + " padded by " + ints(pad.data(), 6) + " is smaller than the kernel " + w.desc());
    out.push_back((padded - w.size(2 + i)) / stride[k] + 1);
  }
  // The CPU backend's sgemm takes int sizes: one output channel (all frames) and the kernel volume.
  if (out[1] * out[2] * out[3] > INT32_MAX || w.numel() / std::max<int64_t>(w.size(0), 1) > INT32_MAX)
    fail(ErrorKind::Unsupported, op, ": input ", x.desc(), " with weight ", w.desc(),
         " is too large for one call; process fewer frames at a time");
  return out;
}
}  // namespace

Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 3> stride, std::array<int, 6> pad,
              const Tensor& residual) {
  const Device d = detail::common_device("conv3d", {&x, &w, &bias, &residual});
  const Shape out = check_conv3d("conv3d", x, w, bias, stride, pad);
  if (residual.defined() && residual.shape() != out)
    bad_shape("conv3d", "residual " + residual.desc() + " does not match the output " + shape_str(out));
#ifdef X2V_WITH_CUDA
  if (d == Device::CUDA) return cuda::conv3d(x, w, bias, stride, pad, residual);
#endif
  require_cpu("conv3d", d);
  Tensor y = cpu::conv3d(host_f32(x), host_f32(w), host_f32(bias), stride, pad);
  if (residual.defined()) cpu::add_(y, host_f32(residual));
  return y;
}

void conv3d_add_(Tensor& acc, const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 3> stride,
                 std::array<int, 6> pad) {
  const Device d = detail::common_device("conv3d_add_", {&acc, &x, &w, &bias});
  const Shape out = check_conv3d("conv3d_add_", x, w, bias, stride, pad);
  if (!acc.defined() || acc.shape() != out || acc.dtype() != x.dtype())
    bad_shape("conv3d_add_", "accumulator " + (acc.defined() ? acc.desc() : std::string("undefined")) +
                                 " must be the output " + shape_str(out) + " in the input's dtype (" + x.desc() + ")");
#ifdef X2V_WITH_CUDA
  if (d == Device::CUDA) return cuda::conv3d_add_(acc, x, w, bias, stride, pad);
#endif
  require_cpu("conv3d_add_", d);
  // acc + conv equals conv + acc exactly: the same values as conv3d with a residual.
  cpu::add_(acc, cpu::conv3d(host_f32(x), host_f32(w), host_f32(bias), stride, pad));
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 2> stride, std::array<int, 4> pad) {
  if (x.dim() != 3 || w.dim() != 4 || x.size(0) != w.size(1))
    bad_shape("conv2d", "input " + x.desc() + " (expected [Cin, H, W]) does not match weight " + w.desc() +
                            " (expected [Cout, Cin, kh, kw])");
  // A 2D conv is a 3D conv over one frame with a kernel one frame deep.
  Tensor y = conv3d(x.reshape({x.size(0), 1, x.size(1), x.size(2)}),
                    w.reshape({w.size(0), w.size(1), 1, w.size(2), w.size(3)}), bias, {1, stride[0], stride[1]},
                    {0, 0, pad[0], pad[1], pad[2], pad[3]});
  return y.reshape({y.size(0), y.size(2), y.size(3)});
}

Tensor upsample_nearest2x(const Tensor& x) {
  if (x.dim() < 2) bad_shape("upsample_nearest2x", "input " + x.desc() + " needs at least 2 dims");
#ifdef X2V_WITH_CUDA
  if (x.device() == Device::CUDA) return cuda::upsample_nearest2x(x);
#endif
  require_cpu("upsample_nearest2x", x.device());
  return cpu::upsample_nearest2x(host_f32(x));
}

}  // namespace x2v::ops
