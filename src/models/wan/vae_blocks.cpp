#include "models/wan/vae_blocks.h"

#include <algorithm>
#include <cmath>

#include "ops/ops.h"

namespace x2v::models::wan::vae {

CacheSlot& Caches::next() {
  if (next_ == slots_.size()) slots_.emplace_back();
  return slots_[next_++];
}

Conv Conv::load(const io::WeightStore& ws, const std::string& prefix, const Shape& w_shape, const VaeLoadOptions& opt) {
  Conv c;
  c.w = place_weight(ws.load(prefix + ".weight", w_shape), opt.matmul_dtype, opt.device);
  if (c.w.dim() == 4) c.w = c.w.reshape({w_shape[0], w_shape[1], 1, w_shape[2], w_shape[3]});
  c.b = place_weight(ws.load(prefix + ".bias", {w_shape[0]}), DType::F32, opt.device);
  return c;
}

namespace {
Tensor load_gamma(const io::WeightStore& ws, const std::string& name, int64_t C, bool image, const VaeLoadOptions& opt) {
  Shape s = image ? Shape{C, 1, 1} : Shape{C, 1, 1, 1};
  return place_weight(ws.load(name, s), DType::F32, opt.device).reshape({C});
}

Tensor last_frames(const Tensor& x, int64_t n) {
  const int64_t T = x.size(1);
  return T <= n ? x : ops::narrow(x, 1, T - n, T);
}
}  // namespace

Tensor causal_conv(const Conv& c, Tensor x, CacheSlot& cache, Tensor residual) {
  const int64_t context = c.w.size(2) - 1;  // frames of left context the kernel needs
  const int64_t cached = cache.frames.defined() ? cache.frames.size(1) : 0;
  // Zero frames stand in for the context the cache lacks (the first two chunks), inside the one
  // concatenation: as padding on one side only they would make the GPU backend build a second,
  // padded copy of the whole input (the decode's highest point once, in its second chunk).
  const int64_t front = context - std::min(cached, context), real = cached + x.size(1);
  std::vector<Tensor> parts;
  if (front) parts.push_back(Tensor::zeros({x.size(0), front, x.size(2), x.size(3)}, x.dtype(), x.device()));
  if (cached) parts.push_back(cache.frames);
  parts.push_back(x);
  Tensor in = parts.size() == 1 ? x : ops::concat(parts, 1);
  parts.clear();
  // The caller's temporary and the old cache are inside `in` now: both are released before the
  // convolution and the new cache is cut after it, so none of them adds to the convolution's
  // peak (the VAE's highest point is a full-resolution convolution with its cuDNN scratch).
  x = Tensor();
  cache.frames = Tensor();
  cache.started = true;
  const int ph = static_cast<int>(c.w.size(3) / 2), pw = static_cast<int>(c.w.size(4) / 2);
  const std::array<int, 6> pad = {0, 0, ph, ph, pw, pw};
  Tensor y;
  if (residual.defined() && residual.unshared() && residual.dtype() == in.dtype()) {
    // The residual is ours alone: the output is written into it (no new full-resolution buffer).
    ops::conv3d_add_(residual, in, c.w, c.b, {1, 1, 1}, pad);
    y = std::move(residual);
  } else {
    y = ops::conv3d(in, c.w, c.b, {1, 1, 1}, pad, residual);
  }
  cache.frames = last_frames(in, std::min<int64_t>(2, real));  // never the zero frames
  return y;
}

PartialSumConv PartialSumConv::load(const io::WeightStore& ws, const std::string& prefix, const Shape& w_shape,
                                   const VaeLoadOptions& opt) {
  X2V_CHECK(w_shape.size() == 5 && w_shape[2] >= 2);
  const int64_t Cout = w_shape[0], kt = w_shape[2];
  PartialSumConv c;
  c.taps = kt;
  // [Cout, Cin, kt, kh, kw] → [kt, Cout, Cin, kh, kw]: only a reordering, so the values are the file's
  // rounded to the matmul dtype as a plain Conv's.
  Tensor w = place_weight(ws.load(prefix + ".weight", w_shape), opt.matmul_dtype, opt.device);
  c.w = ops::permute(w, {2, 0, 1, 3, 4}).reshape({kt * Cout, w_shape[1], 1, w_shape[3], w_shape[4]});
  c.b = Tensor::zeros({kt * Cout}, DType::F32, opt.device);
  c.b.slice((kt - 1) * Cout, kt * Cout).copy_from(ws.load(prefix + ".bias", {Cout}));
  return c;
}

Tensor PartialSumConv::forward(const Tensor& x, CacheSlot& cache) const {
  const int64_t ctx = taps - 1, Cout = w.size(0) / taps, n = x.size(1);
  const int ph = static_cast<int>(w.size(3) / 2), pw = static_cast<int>(w.size(4) / 2);
  Tensor p = ops::conv3d(x, w, b, {1, 1, 1}, {0, 0, ph, ph, pw, pw});  // [kt·Cout, n, H, W]
  const int64_t H = p.size(2), W = p.size(3);
  // Shares of taps 0 .. kt − 2, earlier frames first: index j is frame j − ctx of this chunk.
  Tensor hist = cache.frames.defined() ? cache.frames : Tensor::zeros({ctx * Cout, ctx, H, W}, p.dtype(), p.device());
  Tensor e = ops::concat({hist, p.slice(0, ctx * Cout)}, 1);
  hist = Tensor();
  cache.frames = ops::narrow(e, 1, n, n + ctx);
  cache.started = true;
  Tensor acc = Tensor::empty({Cout, n, H, W}, DType::F32, p.device());
  acc.copy_from(p.slice(ctx * Cout, taps * Cout));
  for (int64_t k = 0; k < ctx; ++k) ops::add_(acc, ops::narrow(e.slice(k * Cout, (k + 1) * Cout), 1, k, k + n));
  return acc.to(x.dtype());
}

Tensor pointwise_conv(const Conv& c, const Tensor& x) { return ops::conv3d(x, c.w, c.b, {1, 1, 1}, {}); }

Tensor norm_silu(const Tensor& x, const Tensor& gamma) { return ops::channel_rms_norm_silu(x, gamma); }

ResidualBlock ResidualBlock::load(const io::WeightStore& ws, const std::string& p, int64_t in, int64_t out,
                                  const VaeLoadOptions& opt) {
  ResidualBlock r;
  r.gamma1 = load_gamma(ws, p + ".residual.0.gamma", in, false, opt);
  r.conv1 = Conv::load(ws, p + ".residual.2", {out, in, 3, 3, 3}, opt);
  r.gamma2 = load_gamma(ws, p + ".residual.3.gamma", out, false, opt);
  r.conv2 = Conv::load(ws, p + ".residual.6", {out, out, 3, 3, 3}, opt);
  if (in != out) r.shortcut = Conv::load(ws, p + ".shortcut", {out, in, 1, 1, 1}, opt);
  return r;
}

Tensor ResidualBlock::forward(Tensor x, Caches& caches) const {
  Tensor h = causal_conv(conv1, norm_silu(x, gamma1), caches.next());
  Tensor a = norm_silu(h, gamma2);
  h = Tensor();  // each full-resolution activation is freed as soon as it is read (VAE peak)
  // (dropout 0 between); the residual is added inside the second convolution, and written into the
  // block's input when the caller handed over the only reference to it.
  Tensor r = shortcut ? pointwise_conv(*shortcut, x) : std::move(x);
  x = Tensor();
  return causal_conv(conv2, std::move(a), caches.next(), std::move(r));
}

AttentionBlock AttentionBlock::load(const io::WeightStore& ws, const std::string& p, int64_t C, const VaeLoadOptions& opt) {
  AttentionBlock a;
  a.gamma = load_gamma(ws, p + ".norm.gamma", C, true, opt);
  a.qkv_w = place_weight(ws.load(p + ".to_qkv.weight", {3 * C, C, 1, 1}), opt.matmul_dtype, opt.device).reshape({3 * C, C});
  a.qkv_b = place_weight(ws.load(p + ".to_qkv.bias", {3 * C}), DType::F32, opt.device);
  a.proj_w = place_weight(ws.load(p + ".proj.weight", {C, C, 1, 1}), opt.matmul_dtype, opt.device).reshape({C, C});
  a.proj_b = place_weight(ws.load(p + ".proj.bias", {C}), DType::F32, opt.device);
  return a;
}

Tensor AttentionBlock::forward(const Tensor& x) const {
  const int64_t C = x.size(0), n = x.size(1), HW = x.size(2) * x.size(3);
  // Pixels as tokens: [n·HW, C]; the 1×1 convs are then linears.
  Tensor tokens = ops::permute(ops::channel_rms_norm(x, gamma).reshape({C, n * HW}), {1, 0});
  // [n·HW, 3C]: q, k, v along channels, in the activation dtype (bf16 on a device, f32 on the CPU).
  Tensor qkv = ops::linear(tokens, qkv_w, qkv_b, ops::Act::None, x.dtype());
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(C)));
  std::vector<Tensor> frames;
  for (int64_t t = 0; t < n; ++t) {  // attention never mixes frames
    Tensor f = qkv.slice(t * HW, (t + 1) * HW);
    auto part = [&](int64_t i) { return ops::narrow(f, 1, i * C, (i + 1) * C).reshape({HW, 1, C}); };
    frames.push_back(ops::attention(part(0), part(1), part(2), scale).reshape({HW, C}));
  }
  Tensor o = ops::linear(n == 1 ? frames[0] : ops::concat(frames, 0), proj_w, proj_b, ops::Act::None, x.dtype());
  return ops::add(ops::permute(o, {1, 0}).reshape(x.shape()), x);
}

Resample Resample::load(const io::WeightStore& ws, const std::string& p, int64_t C, Mode mode, int64_t up_out,
                        const VaeLoadOptions& opt) {
  Resample r;
  r.mode = mode;
  if (mode == Mode::Upsample2d || mode == Mode::Upsample3d) {
    // Folded from the file's values in f32, then rounded to the matmul dtype once per summed tap; the
    // 3×3 weights are not kept.
    const std::string w = p + ".resample.1";
    const ops::UpsampleConvWeights f =
        ops::fold_upsample2x_conv3x3(ws.load(w + ".weight", {up_out, C, 3, 3}), ws.load(w + ".bias", {up_out}));
    r.spatial = {place_weight(f.w, opt.matmul_dtype, opt.device), place_weight(f.b, DType::F32, opt.device)};
  } else {
    r.spatial = Conv::load(ws, p + ".resample.1", {C, C, 3, 3}, opt);
  }
  if (mode == Mode::Upsample3d) r.time = Conv::load(ws, p + ".time_conv", {2 * C, C, 3, 1, 1}, opt);
  if (mode == Mode::Downsample3d) r.time = Conv::load(ws, p + ".time_conv", {C, C, 3, 1, 1}, opt);
  return r;
}

Tensor Resample::forward(const Tensor& x, Caches& caches) const {
  Tensor h = x;
  if (mode == Mode::Upsample3d) {
    CacheSlot& slot = caches.next();
    if (!slot.started) {
      // The first latent frame becomes one frame, without the temporal conv; later frames see
      // zeros (not frame 0) as their left context.
      slot.started = true;
    } else {
      const int64_t C = x.size(0), n = x.size(1);
      Tensor y = causal_conv(*time, x, slot);  // [2C, n, H, W]: channel halves are frames 2i, 2i+1
      h = ops::permute(y.reshape({2, C, n, x.size(2) * x.size(3)}), {1, 2, 0, 3}).reshape({C, 2 * n, x.size(2), x.size(3)});
    }
  }
  switch (mode) {
    case Mode::Upsample2d:
    case Mode::Upsample3d:
      // Nearest ×2 then the 3×3 conv, in the sub-pixel form (the upsampled input is never made).
      h = ops::upsample2x_conv3x3(h, {spatial.w, spatial.b});
      break;
    case Mode::Downsample2d:
    case Mode::Downsample3d:
      // ZeroPad2d(0, 1, 0, 1) then a valid stride-2 conv.
      h = ops::conv3d(h, spatial.w, spatial.b, {1, 2, 2}, {0, 0, 0, 1, 0, 1});
      break;
  }
  if (mode == Mode::Downsample3d) {
    CacheSlot& slot = caches.next();
    const int64_t n = h.size(1);
    if (!slot.started) {
      // Frame 0 passes unchanged; it is the left context of the next chunk.
      slot.started = true;
      slot.frames = last_frames(h, 1);
      return h;
    }
    Tensor in = ops::concat({slot.frames, h}, 1);
    slot.frames = ops::narrow(h, 1, n - 1, n);
    h = ops::conv3d(in, time->w, time->b, {2, 1, 1}, {});
  }
  return h;
}

Tensor forward(const Layer& l, Tensor x, Caches& caches) {
  if (const auto* r = std::get_if<ResidualBlock>(&l)) return r->forward(std::move(x), caches);
  if (const auto* a = std::get_if<AttentionBlock>(&l)) return a->forward(x);
  return std::get<Resample>(l).forward(x, caches);
}

Tensor AvgDown3D::forward(const Tensor& xin) const {
  const Tensor x = xin.dtype() == DType::F32 ? xin : xin.to(DType::F32);
  const int64_t T = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t F = ft * fs * fs, g = in * F / out, pad = (ft - T % ft) % ft;
  const int64_t To = (T + pad) / ft, Ho = H / fs, Wo = W / fs, N = To * Ho * Wo;
  Tensor p = pad ? ops::concat({Tensor::zeros({in, pad, H, W}, DType::F32, x.device()), x}, 1) : x;
  // Unfold into e = (c·ft + it)·fs² + ih·fs + iw, in two permutes of rank ≤ 6: time, then space.
  Tensor a = ops::permute(p.reshape({in, To, ft, H * W}), {1, 0, 2, 3}).reshape({To, in * ft, Ho, fs, Wo, fs});
  Tensor e = ops::permute(a, {0, 2, 4, 1, 3, 5}).reshape({N, out, g});
  // The g members of a group first, so each is a view; summed in order as a plain loop would.
  Tensor members = ops::permute(e, {2, 0, 1});  // [g, N, out]
  Tensor s = members[0].clone();
  for (int64_t r = 1; r < g; ++r) ops::add_(s, members[r]);
  Tensor mean = ops::scale(s, 1.f / static_cast<float>(g));
  return ops::permute(mean, {1, 0}).reshape({out, To, Ho, Wo});
}

Tensor DupUp3D::forward(const Tensor& xin, bool first_chunk) const {
  const Tensor x = xin.dtype() == DType::F32 ? xin : xin.to(DType::F32);
  const int64_t T = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t F = ft * fs * fs, rep = out * F / in;
  const int64_t To = T * ft, Ho = H * fs, Wo = W * fs;
  // Unfolded channel e takes input channel e / rep: each channel `rep` times in a row.
  Tensor e = x.reshape({in, 1, T * H * W});
  if (rep > 1) e = ops::concat(std::vector<Tensor>(static_cast<size_t>(rep), e), 1);
  // e = oc·F + it·fs² + ih·fs + iw → [oc, t·ft + it, h·fs + ih, w·fs + iw]: time, then space.
  Tensor a = ops::permute(e.reshape({out, ft, fs * fs, T, H * W}), {0, 3, 1, 2, 4}).reshape({out * To, fs, fs, H, W});
  Tensor y = ops::permute(a, {0, 3, 1, 4, 2}).reshape({out, To, Ho, Wo});
  // The first latent frame stands for one video frame, not ft.
  return first_chunk && ft > 1 ? ops::narrow(y, 1, ft - 1, To) : y;
}

Tensor patchify2(const Tensor& x) {
  const int64_t C = x.size(0), T = x.size(1), h = x.size(2) / 2, w = x.size(3) / 2;
  // [c, t, h, row, w, col] → [c, col, row, t, h, w]
  return ops::permute(x.reshape({C, T, h, 2, w, 2}), {0, 5, 3, 1, 2, 4}).reshape({C * 4, T, h, w});
}

Tensor unpatchify2(const Tensor& x) {
  const int64_t C = x.size(0) / 4, T = x.size(1), h = x.size(2), w = x.size(3);
  // [c, col, row, t, h, w] → [c, t, h, row, w, col]
  return ops::permute(x.reshape({C, 2, 2, T, h, w}), {0, 3, 4, 2, 5, 1}).reshape({C, T, 2 * h, 2 * w});
}

}  // namespace x2v::models::wan::vae
