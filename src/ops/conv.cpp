#include "ops/conv.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "ops/cpu/cpu.h"
#include "ops/dispatch.h"
#include "ops/layout.h"
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

UpsampleConvWeights fold_upsample2x_conv3x3(const Tensor& w, const Tensor& b) {
  const bool w4 = w.dim() == 4 && w.size(2) == 3 && w.size(3) == 3;
  const bool w5 = w.dim() == 5 && w.size(2) == 1 && w.size(3) == 3 && w.size(4) == 3;
  if (!w4 && !w5)
    bad_shape("fold_upsample2x_conv3x3", "weight " + w.desc() + " (expected [Cout, Cin, 3, 3] or [Cout, Cin, 1, 3, 3])");
  const int64_t Cout = w.size(0), Cin = w.size(1);
  if (b.defined() && (b.dim() != 1 || b.size(0) != Cout))
    bad_shape("fold_upsample2x_conv3x3", "bias " + b.desc() + " does not match weight " + w.desc());
  // Which 3×3 rows (and, the same, columns) fall on source row i − 1 + k for parity p: output row
  // 2i + p reads upsampled rows 2i + p − 1 .. 2i + p + 1, which are source rows i − 1, i, i (p = 0)
  // or i, i, i + 1 (p = 1).
  static constexpr int kTaps[2][2][2] = {{{0, 1}, {1, 3}}, {{0, 2}, {2, 3}}};  // [p][k] = [first, end)
  const Tensor src = host_f32(w.is_cpu() ? w : w.to(Device::CPU));
  const float* wp = src.data<float>();
  UpsampleConvWeights f;
  f.w = Tensor::empty({4 * Cout, Cin, 1, 2, 2}, DType::F32);
  float* fp = f.w.data<float>();
  for (int py = 0; py < 2; ++py)
    for (int px = 0; px < 2; ++px)
      for (int64_t co = 0; co < Cout; ++co)
        for (int64_t ci = 0; ci < Cin; ++ci) {
          const float* k3 = wp + (co * Cin + ci) * 9;
          float* k2 = fp + (((2 * py + px) * Cout + co) * Cin + ci) * 4;
          for (int ky = 0; ky < 2; ++ky)
            for (int kx = 0; kx < 2; ++kx) {
              float sum = 0.f;
              for (int a = kTaps[py][ky][0]; a < kTaps[py][ky][1]; ++a)
                for (int c = kTaps[px][kx][0]; c < kTaps[px][kx][1]; ++c) sum += k3[a * 3 + c];
              k2[ky * 2 + kx] = sum;
            }
        }
  if (b.defined()) {
    const Tensor hb = host_f32(b.is_cpu() ? b : b.to(Device::CPU));
    f.b = Tensor::empty({4 * Cout}, DType::F32);
    for (int64_t p = 0; p < 4; ++p)
      std::copy(hb.data<float>(), hb.data<float>() + Cout, f.b.data<float>() + p * Cout);
  }
  return f;
}

Tensor upsample2x_conv3x3(const Tensor& x, const UpsampleConvWeights& f) {
  const Tensor& w = f.w;
  if (w.dim() != 5 || w.size(0) % 4 != 0 || w.size(2) != 1 || w.size(3) != 2 || w.size(4) != 2)
    bad_shape("upsample2x_conv3x3", "weight " + w.desc() +
                                        " (expected the folded [4·Cout, Cin, 1, 2, 2] of fold_upsample2x_conv3x3)");
  // Padding 1 on both sides gives H + 1 rows: parity py's phase starts at row py (see the header).
  return interleave_parities(conv3d(x, w, f.b, {1, 1, 1}, {0, 0, 1, 1, 1, 1}));
}

}  // namespace x2v::ops
