// Convolutions for the VAE (3D, causal in time) and the patch embedding, through cuDNN's
// convolution API on channels-first tensors; f32 uses TF32 tensor cores as PyTorch's default does,
// bf16 accumulates in f32. cuDNN pads symmetrically, so a causal (front-only) time padding is done
// by an explicit padding pass first. The bias is added by a small kernel (one pass over the output).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <tuple>

#include "ops/cuda/common.cuh"

#ifdef X2V_WITH_CUDNN
#include <cudnn.h>
#endif

namespace x2v::ops::cuda {
namespace {

using x2v::cuda::grid_for;
using x2v::cuda::stream;

// y[c, t, h, w] = x[c, t − pt, h − ph, w − pw] inside, 0 outside.
template <class T>
__global__ void k_pad3d(const T* x, T* y, int64_t C, int64_t Ti, int64_t Hi, int64_t Wi, int64_t To, int64_t Ho,
                        int64_t Wo, int64_t pt, int64_t ph, int64_t pw) {
  const int64_t n = C * To * Ho * Wo;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t w = i % Wo, r = i / Wo;
    int64_t h = r % Ho;
    r /= Ho;
    int64_t t = r % To, c = r / To;
    int64_t ti = t - pt, hi = h - ph, wi = w - pw;
    float v = 0.f;
    if (ti >= 0 && ti < Ti && hi >= 0 && hi < Hi && wi >= 0 && wi < Wi) v = dev::ld(x, ((c * Ti + ti) * Hi + hi) * Wi + wi);
    dev::st(y, i, v);
  }
}

template <class T, class B>
__global__ void k_bias_channels(T* y, const B* b, int64_t C, int64_t inner) {
  const int64_t n = C * inner;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dev::st(y, i, dev::ld(y, i) + dev::ld(b, i / inner));
}

template <class T>
__global__ void k_upsample2x(const T* x, T* y, int64_t outer, int64_t H, int64_t W) {
  const int64_t n = outer * 4 * H * W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = i % (2 * W), r = i / (2 * W);
    const int64_t h = r % (2 * H), o = r / (2 * H);
    y[i] = x[(o * H + h / 2) * W + w / 2];
  }
}

#ifdef X2V_WITH_CUDNN
struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t algo{};
  size_t workspace = 0;
  // Bias in the convolution call (cudnnConvolutionBiasActivationForward), where cuDNN takes it.
  cudnnTensorDescriptor_t bias = nullptr;
  cudnnActivationDescriptor_t identity = nullptr;
  bool fused_bias = false;
};

// Scratch allowed to one convolution call. cuDNN's fast algorithm for these NCDHW shapes (implicit
// precomputed GEMM, which transposes to channels-last internally) needs about the bytes of its input
// plus its output in scratch: 730 MiB for the Wan2.1 VAE decoder's full-resolution 96-channel
// convolution of 6 frames at 480p, 1.7 GiB at 720p, where the algorithm that needs none runs 20-40x
// slower (H100, runs 20-21). Running such a call in windows of frames through strided descriptors
// was tried and measured 10x slower per frame, so the limit only bounds the choice; lower it with
// set_conv_workspace_limit to trade speed for memory.
size_t g_workspace_limit = size_t(2) << 30;

// One call's shape, and the scratch limit it was planned under.
struct ConvShape {
  DType dt;
  int64_t C, T, H, W, O, kt, kh, kw;
  std::array<int, 3> stride, pad;
  auto key() const {
    return std::make_tuple(static_cast<int>(dt), C, T, H, W, O, kt, kh, kw, stride, pad, g_workspace_limit);
  }
};

// x and w are the call's buffers; trial_y() gives an output buffer the timed candidates may overwrite
// (asked for only when the plan is made).
ConvPlan& conv_plan(const ConvShape& s, const void* x, const void* w, const std::function<void*()>& trial_y) {
  static std::mutex mu;
  static std::map<decltype(s.key()), ConvPlan> plans;
  std::lock_guard<std::mutex> lk(mu);
  if (auto it = plans.find(s.key()); it != plans.end()) return it->second;
  ConvPlan p;
  const cudnnDataType_t t = s.dt == DType::BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  X2V_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.x));
  X2V_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.y));
  X2V_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.w));
  X2V_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p.conv));
  int xd[5] = {1, int(s.C), int(s.T), int(s.H), int(s.W)};
  int xs[5] = {int(s.C * s.T * s.H * s.W), int(s.T * s.H * s.W), int(s.H * s.W), int(s.W), 1};
  X2V_CUDNN_CHECK(cudnnSetTensorNdDescriptor(p.x, t, 5, xd, xs));
  int wd[5] = {int(s.O), int(s.C), int(s.kt), int(s.kh), int(s.kw)};
  X2V_CUDNN_CHECK(cudnnSetFilterNdDescriptor(p.w, t, CUDNN_TENSOR_NCHW, 5, wd));
  int pd[3] = {s.pad[0], s.pad[1], s.pad[2]}, sd[3] = {s.stride[0], s.stride[1], s.stride[2]}, dd[3] = {1, 1, 1};
  X2V_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(p.conv, 3, pd, sd, dd, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  X2V_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION));
  int yd[5];
  X2V_CUDNN_CHECK(cudnnGetConvolutionNdForwardOutputDim(p.conv, p.x, p.w, 5, yd));
  int ys[5] = {yd[1] * yd[2] * yd[3] * yd[4], yd[2] * yd[3] * yd[4], yd[3] * yd[4], yd[4], 1};
  X2V_CUDNN_CHECK(cudnnSetTensorNdDescriptor(p.y, t, 5, yd, ys));
  // The algorithm is chosen by running cuDNN's candidates once on the real buffers (its heuristic
  // ranking is often off for these 3D shapes, and it ignores memory): the fastest within the limit.
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int n = 0;
  {
    // Scratch for the trial: as much as the largest candidate within the limit asks (the heuristic
    // knows each candidate's need), so the trial costs no more memory than the run that follows.
    X2V_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(x2v::cuda::cudnn(), p.x, p.w, p.conv, p.y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
    size_t trial = 0;
    for (int i = 0; i < n; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= g_workspace_limit)
        trial = std::max(trial, perf[i].memory);
    Tensor scratch = Tensor::empty({static_cast<int64_t>(std::max<size_t>(trial, 1))}, DType::U8, Device::CUDA);
    X2V_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(x2v::cuda::cudnn(), p.x, x, p.w, w, p.conv, p.y, trial_y(),
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, scratch.raw(),
                                                           trial));
  }
  bool found = false;
  for (int i = 0; i < n && !found; ++i) {  // sorted by time
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > g_workspace_limit) continue;
    p.algo = perf[i].algo;
    p.workspace = perf[i].memory;
    // The run must use the math type the candidate was timed with: cuDNN may time an algorithm
    // under another math type than the descriptor's, and refuses the mismatch (BAD_PARAM) at run time.
    X2V_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, perf[i].mathType));
    found = true;
  }
  if (std::getenv("X2V_CUDA_VERBOSE")) {
    std::fprintf(stderr, "conv3d x [%lld,%lld,%lld,%lld] w [%lld,%lld,%lld,%lld,%lld] %s:", (long long)s.C,
                 (long long)s.T, (long long)s.H, (long long)s.W, (long long)s.O, (long long)s.C,
                 (long long)s.kt, (long long)s.kh, (long long)s.kw, s.dt == DType::BF16 ? "bf16" : "f32");
    for (int i = 0; i < n; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS)
        std::fprintf(stderr, " algo%d/math%d %.3f ms %zu MiB;", static_cast<int>(perf[i].algo),
                     static_cast<int>(perf[i].mathType), perf[i].time, perf[i].memory >> 20);
    std::fprintf(stderr, " -> algo%d\n", static_cast<int>(p.algo));
  }
  if (found && p.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) {
    X2V_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.bias));
    int bd[5] = {1, int(s.O), 1, 1, 1}, bs[5] = {int(s.O), 1, 1, 1, 1};
    X2V_CUDNN_CHECK(cudnnSetTensorNdDescriptor(p.bias, t, 5, bd, bs));
    X2V_CUDNN_CHECK(cudnnCreateActivationDescriptor(&p.identity));
    X2V_CUDNN_CHECK(cudnnSetActivationDescriptor(p.identity, CUDNN_ACTIVATION_IDENTITY, CUDNN_PROPAGATE_NAN, 0.0));
    p.fused_bias = true;
  }
  if (!found)
    fail(ErrorKind::Unsupported, "cuDNN has no forward algorithm for conv3d x [", s.C, ", ", s.T, ", ", s.H, ", ",
         s.W, "] kernel [", s.O, ", ", s.C, ", ", s.kt, ", ", s.kh, ", ", s.kw, "] within ",
         g_workspace_limit >> 20, " MiB of scratch");
  return plans.emplace(s.key(), p).first->second;
}

#endif  // X2V_WITH_CUDNN

}  // namespace

#ifdef X2V_WITH_CUDNN
void set_conv_workspace_limit(size_t bytes) { g_workspace_limit = std::max<size_t>(bytes, 1); }
size_t conv_workspace_limit() { return g_workspace_limit; }
#else
void set_conv_workspace_limit(size_t) {}
size_t conv_workspace_limit() { return 0; }
#endif

namespace {
// y = conv(x) + bias (+ residual). With `in_place` the output is written into `residual` itself
// (cuDNN's epilogue reads z and writes y from the same buffer), so the block's output needs no
// allocation of its own.
Tensor conv3d_impl(const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 3> stride,
                   std::array<int, 6> pad, const Tensor& residual, bool in_place) {
  x2v::cuda::require_float(x, "conv3d", "x");
  x2v::cuda::require_float(w, "conv3d", "w");
  if (x.dim() != 4 || w.dim() != 5 || w.size(1) != x.size(0))
    fail(ErrorKind::InvalidArgument, "conv3d: x ", x.desc(), " and w ", w.desc(),
         " do not match ([Cin, T, H, W], [Cout, Cin, kt, kh, kw])");
  for (int s : stride)
    if (s <= 0) fail(ErrorKind::InvalidArgument, "conv3d: stride must be positive");
  for (int q : pad)
    if (q < 0) fail(ErrorKind::InvalidArgument, "conv3d: padding must not be negative");
  const int64_t O = w.size(0), kt = w.size(2), kh = w.size(3), kw = w.size(4);
  if (bias.defined()) {
    x2v::cuda::require_float(bias, "conv3d", "bias");
    if (bias.numel() != O) fail(ErrorKind::InvalidArgument, "conv3d: bias ", bias.desc(), " for ", O, " channels");
  }
  Tensor xin = x;
  std::array<int, 3> sym = {pad[0], pad[2], pad[4]};
  if (pad[0] != pad[1] || pad[2] != pad[3] || pad[4] != pad[5]) {
    const int64_t C = x.size(0), Ti = x.size(1), Hi = x.size(2), Wi = x.size(3);
    const int64_t To = Ti + pad[0] + pad[1], Ho = Hi + pad[2] + pad[3], Wo = Wi + pad[4] + pad[5];
    xin = Tensor::empty({C, To, Ho, Wo}, x.dtype(), Device::CUDA);
    if (xin.numel()) {
      X2V_DISPATCH_FLOAT(x.dtype(), T, {
        k_pad3d<<<grid_for(xin.numel(), 256), 256, 0, stream()>>>(static_cast<const T*>(x.raw()),
                                                                  static_cast<T*>(xin.raw()), C, Ti, Hi, Wi, To, Ho,
                                                                  Wo, pad[0], pad[2], pad[4]);
      });
      X2V_LAUNCH_CHECK();
    }
    sym = {0, 0, 0};
  }
  const int64_t C = xin.size(0), T = xin.size(1), H = xin.size(2), W = xin.size(3);
  auto odim = [](int64_t n, int p, int64_t k, int s) { return (n + 2 * p - k) / s + 1; };
  const int64_t To = odim(T, sym[0], kt, stride[0]), Ho = odim(H, sym[1], kh, stride[1]),
                Wo = odim(W, sym[2], kw, stride[2]);
  if (To <= 0 || Ho <= 0 || Wo <= 0)
    fail(ErrorKind::InvalidArgument, "conv3d: input ", x.desc(), " is smaller than the kernel ", w.desc());
  if (in_place && (residual.dtype() != x.dtype() || residual.shape() != Shape{O, To, Ho, Wo}))
    fail(ErrorKind::InvalidArgument, "conv3d_add_: accumulator ", residual.desc(), " for an output ",
         shape_str({O, To, Ho, Wo}), " of ", dtype_name(x.dtype()));
  Tensor y = in_place ? residual : Tensor::empty({O, To, Ho, Wo}, x.dtype(), Device::CUDA);
#ifdef X2V_WITH_CUDNN
  Tensor wc = x2v::cuda::convert(w, x.dtype());
  // The trial runs write their output: never into an accumulator that still holds the residual.
  Tensor trial_out;
  ConvPlan& p = conv_plan({x.dtype(), C, T, H, W, O, kt, kh, kw, stride, sym}, xin.raw(), wc.raw(), [&]() -> void* {
    if (!in_place) return y.raw();
    trial_out = Tensor::empty(y.shape(), y.dtype(), Device::CUDA);
    return trial_out.raw();
  });
  trial_out = Tensor();
  Tensor scratch = p.workspace ? x2v::cuda::workspace(p.workspace) : Tensor();
  void* ws = scratch.defined() ? scratch.raw() : nullptr;
  const float one = 1.f, zero = 0.f;
  bool epilogue_done = false;
  // The residual must be y's dtype to enter the epilogue.
  const bool res_fusable = !residual.defined() || residual.dtype() == y.dtype();
  if ((bias.defined() || residual.defined()) && p.fused_bias && res_fusable) {
    // Bias and residual in the convolution's epilogue, y = conv + bias + residual (cuDNN offers it
    // with the identity activation for this algorithm only): up to two passes over the output
    // fewer, each ~0.25 ms per convolution at the VAE's full resolution. The bias is given in the
    // output's dtype.
    Tensor bc = bias.defined() ? x2v::cuda::convert(bias, y.dtype()) : Tensor::zeros({O}, y.dtype(), Device::CUDA);
    const float alpha2 = residual.defined() ? 1.f : 0.f;
    const cudnnStatus_t st = cudnnConvolutionBiasActivationForward(
        x2v::cuda::cudnn(), &one, p.x, xin.raw(), p.w, wc.raw(), p.conv, p.algo, ws, p.workspace, &alpha2, p.y,
        residual.defined() ? residual.raw() : y.raw(), p.bias, bc.raw(), p.identity, p.y, y.raw());
    if (st == CUDNN_STATUS_SUCCESS) {
      epilogue_done = true;
    } else {
      p.fused_bias = false;  // refused for this shape: the separate bias pass from now on
      if (std::getenv("X2V_CUDA_VERBOSE"))
        std::fprintf(stderr, "conv3d: fused bias refused (%s), separate pass\n", cudnnGetErrorString(st));
    }
  }
  // Not fused and in place: the convolution goes to a buffer of its own and is added below.
  if (!epilogue_done && in_place) y = Tensor::empty({O, To, Ho, Wo}, x.dtype(), Device::CUDA);
  if (!epilogue_done)
    X2V_CUDNN_CHECK(cudnnConvolutionForward(x2v::cuda::cudnn(), &one, p.x, xin.raw(), p.w, wc.raw(), p.conv, p.algo,
                                            ws, p.workspace, &zero, p.y, y.raw()));
#else
  (void)C;
  const bool epilogue_done = false;
  fail(ErrorKind::Unsupported, "conv3d on CUDA needs cuDNN, which this build does not have");
#endif
  if (bias.defined() && !epilogue_done) {
    X2V_DISPATCH_FLOAT(y.dtype(), T, X2V_DISPATCH_FLOAT(bias.dtype(), B, {
      k_bias_channels<<<grid_for(y.numel(), 256), 256, 0, stream()>>>(
          static_cast<T*>(y.raw()), static_cast<const B*>(bias.raw()), O, To * Ho * Wo);
    }));
    X2V_LAUNCH_CHECK();
  }
  if (epilogue_done || !residual.defined()) return y;
  if (!in_place) {
    add_(y, residual);
    return y;
  }
  Tensor acc = residual;
  add_(acc, y);
  return acc;
}
}  // namespace

Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 3> stride, std::array<int, 6> pad,
              const Tensor& residual) {
  return conv3d_impl(x, w, bias, stride, pad, residual, false);
}

void conv3d_add_(Tensor& acc, const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 3> stride,
                 std::array<int, 6> pad) {
  conv3d_impl(x, w, bias, stride, pad, acc, true);
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, std::array<int, 2> stride, std::array<int, 4> pad) {
  x2v::cuda::require_float(x, "conv2d", "x");
  x2v::cuda::require_float(w, "conv2d", "w");
  if (x.dim() != 3 || w.dim() != 4)
    fail(ErrorKind::InvalidArgument, "conv2d: x ", x.desc(), " and w ", w.desc(), " must be [Cin, H, W], [Cout, Cin, kh, kw]");
  Tensor y = conv3d(x.reshape({x.size(0), 1, x.size(1), x.size(2)}),
                    w.reshape({w.size(0), w.size(1), 1, w.size(2), w.size(3)}), bias, {1, stride[0], stride[1]},
                    {0, 0, pad[0], pad[1], pad[2], pad[3]});
  return y.reshape({y.size(0), y.size(2), y.size(3)});
}

Tensor upsample_nearest2x(const Tensor& x) {
  x2v::cuda::require_device(x, "upsample_nearest2x", "x");
  if (x.dim() < 2) fail(ErrorKind::InvalidArgument, "upsample_nearest2x: x ", x.desc(), " needs two trailing dims");
  Shape os = x.shape();
  const int64_t H = os[os.size() - 2], W = os.back(), outer = H * W ? x.numel() / (H * W) : 0;
  os[os.size() - 2] *= 2;
  os.back() *= 2;
  Tensor y = Tensor::empty(os, x.dtype(), Device::CUDA);
  if (!y.numel()) return y;
  switch (dtype_size(x.dtype())) {
    case 2:
      k_upsample2x<<<grid_for(y.numel(), 256), 256, 0, stream()>>>(static_cast<const uint16_t*>(x.raw()),
                                                                  static_cast<uint16_t*>(y.raw()), outer, H, W);
      break;
    case 4:
      k_upsample2x<<<grid_for(y.numel(), 256), 256, 0, stream()>>>(static_cast<const uint32_t*>(x.raw()),
                                                                  static_cast<uint32_t*>(y.raw()), outer, H, W);
      break;
    default: fail(ErrorKind::Unsupported, "upsample_nearest2x: dtype ", dtype_name(x.dtype()));
  }
  X2V_LAUNCH_CHECK();
  return y;
}

}  // namespace x2v::ops::cuda
