#include "models/wan/vae_blocks.h"

#include <cmath>

#include "ops/ops.h"

namespace x2v::models::wan::vae {

CacheSlot& Caches::next() {
  if (next_ == slots_.size()) slots_.emplace_back();
  return slots_[next_++];
}

Conv Conv::load(const io::WeightStore& ws, const std::string& prefix, const Shape& w_shape) {
  Conv c;
  c.w = ws.load(prefix + ".weight", w_shape).to(DType::F32);
  if (c.w.dim() == 4) c.w = c.w.reshape({w_shape[0], w_shape[1], 1, w_shape[2], w_shape[3]});
  c.b = ws.load(prefix + ".bias", {w_shape[0]}).to(DType::F32);
  return c;
}

namespace {
Tensor load_gamma(const io::WeightStore& ws, const std::string& name, int64_t C, bool image) {
  Shape s = image ? Shape{C, 1, 1} : Shape{C, 1, 1, 1};
  return ws.load(name, s).to(DType::F32).reshape({C});
}

Tensor last_frames(const Tensor& x, int64_t n) {
  const int64_t T = x.size(1);
  return T <= n ? x : ops::narrow(x, 1, T - n, T);
}
}  // namespace

Tensor causal_conv(const Conv& c, const Tensor& x, CacheSlot& cache) {
  const int64_t context = c.w.size(2) - 1;  // frames of left context the kernel needs
  const int64_t cached = cache.frames.defined() ? cache.frames.size(1) : 0;
  Tensor in = cached ? ops::concat({cache.frames, x}, 1) : x;
  // The cache holds at most `context` frames, so the zero padding covers what it lacks.
  const int front = static_cast<int>(context - std::min(cached, context));
  cache.frames = last_frames(in, 2);
  cache.started = true;
  const int ph = static_cast<int>(c.w.size(3) / 2), pw = static_cast<int>(c.w.size(4) / 2);
  return ops::conv3d(in, c.w, c.b, {1, 1, 1}, {front, 0, ph, ph, pw, pw});
}

Tensor pointwise_conv(const Conv& c, const Tensor& x) { return ops::conv3d(x, c.w, c.b, {1, 1, 1}, {}); }

Tensor norm_silu(const Tensor& x, const Tensor& gamma) { return ops::silu(ops::channel_rms_norm(x, gamma)); }

ResidualBlock ResidualBlock::load(const io::WeightStore& ws, const std::string& p, int64_t in, int64_t out) {
  ResidualBlock r;
  r.gamma1 = load_gamma(ws, p + ".residual.0.gamma", in, false);
  r.conv1 = Conv::load(ws, p + ".residual.2", {out, in, 3, 3, 3});
  r.gamma2 = load_gamma(ws, p + ".residual.3.gamma", out, false);
  r.conv2 = Conv::load(ws, p + ".residual.6", {out, out, 3, 3, 3});
  if (in != out) r.shortcut = Conv::load(ws, p + ".shortcut", {out, in, 1, 1, 1});
  return r;
}

Tensor ResidualBlock::forward(const Tensor& x, Caches& caches) const {
  Tensor h = causal_conv(conv1, norm_silu(x, gamma1), caches.next());
  h = causal_conv(conv2, norm_silu(h, gamma2), caches.next());  // (dropout 0 between)
  return ops::add(h, shortcut ? pointwise_conv(*shortcut, x) : x);
}

AttentionBlock AttentionBlock::load(const io::WeightStore& ws, const std::string& p, int64_t C) {
  AttentionBlock a;
  a.gamma = load_gamma(ws, p + ".norm.gamma", C, true);
  a.qkv_w = ws.load(p + ".to_qkv.weight", {3 * C, C, 1, 1}).to(DType::F32).reshape({3 * C, C});
  a.qkv_b = ws.load(p + ".to_qkv.bias", {3 * C}).to(DType::F32);
  a.proj_w = ws.load(p + ".proj.weight", {C, C, 1, 1}).to(DType::F32).reshape({C, C});
  a.proj_b = ws.load(p + ".proj.bias", {C}).to(DType::F32);
  return a;
}

Tensor AttentionBlock::forward(const Tensor& x) const {
  const int64_t C = x.size(0), n = x.size(1), HW = x.size(2) * x.size(3);
  // Pixels as tokens: [n·HW, C]; the 1×1 convs are then linears.
  Tensor tokens = ops::permute(ops::channel_rms_norm(x, gamma).reshape({C, n * HW}), {1, 0});
  Tensor qkv = ops::linear(tokens, qkv_w, qkv_b);  // [n·HW, 3C]: q, k, v along channels
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(C)));
  std::vector<Tensor> frames;
  for (int64_t t = 0; t < n; ++t) {  // attention never mixes frames
    Tensor f = qkv.slice(t * HW, (t + 1) * HW);
    auto part = [&](int64_t i) { return ops::narrow(f, 1, i * C, (i + 1) * C).reshape({HW, 1, C}); };
    frames.push_back(ops::attention(part(0), part(1), part(2), scale).reshape({HW, C}));
  }
  Tensor o = ops::linear(n == 1 ? frames[0] : ops::concat(frames, 0), proj_w, proj_b);
  return ops::add(ops::permute(o, {1, 0}).reshape(x.shape()), x);
}

Resample Resample::load(const io::WeightStore& ws, const std::string& p, int64_t C, Mode mode, int64_t up_out) {
  Resample r;
  r.mode = mode;
  const bool up = mode == Mode::Upsample2d || mode == Mode::Upsample3d;
  r.spatial = Conv::load(ws, p + ".resample.1", {up ? up_out : C, C, 3, 3});
  if (mode == Mode::Upsample3d) r.time = Conv::load(ws, p + ".time_conv", {2 * C, C, 3, 1, 1});
  if (mode == Mode::Downsample3d) r.time = Conv::load(ws, p + ".time_conv", {C, C, 3, 1, 1});
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
      h = ops::conv3d(ops::upsample_nearest2x(h), spatial.w, spatial.b, {1, 1, 1}, {0, 0, 1, 1, 1, 1});
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

Tensor forward(const Layer& l, const Tensor& x, Caches& caches) {
  if (const auto* r = std::get_if<ResidualBlock>(&l)) return r->forward(x, caches);
  if (const auto* a = std::get_if<AttentionBlock>(&l)) return a->forward(x);
  return std::get<Resample>(l).forward(x, caches);
}

namespace {
void require_host(const Tensor& x, const char* what) {
  if (!x.is_cpu())
    fail(ErrorKind::Unsupported, what, ": no ", device_name(x.device()), " implementation yet; run the VAE on the CPU");
}
}  // namespace

Tensor AvgDown3D::forward(const Tensor& xin) const {
  require_host(xin, "AvgDown3D");
  Tensor x = xin.to(DType::F32);
  const int64_t T = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t F = ft * fs * fs, g = in * F / out, pad = (ft - T % ft) % ft;
  const int64_t To = (T + pad) / ft, Ho = H / fs, Wo = W / fs;
  Tensor y = Tensor::empty({out, To, Ho, Wo}, DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  // Expanded channel e = c·F + (it·fs² + ih·fs + iw); output channel o averages e ∈ [o·g, (o+1)·g).
#pragma omp parallel for if (y.numel() > (1 << 20))
  for (int64_t o = 0; o < out; ++o)
    for (int64_t t = 0; t < To; ++t)
      for (int64_t h = 0; h < Ho; ++h)
        for (int64_t w = 0; w < Wo; ++w) {
          float s = 0.f;
          for (int64_t e = o * g; e < (o + 1) * g; ++e) {
            const int64_t c = e / F, r = e % F, it = r / (fs * fs), ih = (r / fs) % fs, iw = r % fs;
            const int64_t ti = t * ft + it - pad;  // zero frames were padded in front
            if (ti >= 0) s += xp[((c * T + ti) * H + h * fs + ih) * W + w * fs + iw];
          }
          yp[((o * To + t) * Ho + h) * Wo + w] = s / static_cast<float>(g);
        }
  return y;
}

Tensor DupUp3D::forward(const Tensor& xin, bool first_chunk) const {
  require_host(xin, "DupUp3D");
  Tensor x = xin.to(DType::F32);
  const int64_t T = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t F = ft * fs * fs, rep = out * F / in;
  const int64_t To = T * ft, Ho = H * fs, Wo = W * fs;
  Tensor y = Tensor::empty({out, To, Ho, Wo}, DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  // Each input channel repeated `rep` times gives expanded channel e = oc·F + (it·fs² + ih·fs + iw).
#pragma omp parallel for if (y.numel() > (1 << 20))
  for (int64_t oc = 0; oc < out; ++oc)
    for (int64_t to = 0; to < To; ++to)
      for (int64_t ho = 0; ho < Ho; ++ho)
        for (int64_t wo = 0; wo < Wo; ++wo) {
          const int64_t e = oc * F + (to % ft) * fs * fs + (ho % fs) * fs + wo % fs;
          yp[((oc * To + to) * Ho + ho) * Wo + wo] = xp[(((e / rep) * T + to / ft) * H + ho / fs) * W + wo / fs];
        }
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
