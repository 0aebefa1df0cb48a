// WanVAE: encoder and decoder of the Wan2.1 and Wan2.2 VAEs, run chunk by chunk as the reference does
// (wan-spec §5.2). Networks are built from the configuration exactly as the reference constructors
// build their module lists, so the checkpoint names fall out of the same loops.
#include "models/wan/vae.h"

#include <algorithm>
#include <cmath>

#include "models/wan/vae_blocks.h"
#include "ops/ops.h"

namespace x2v::models::wan {

using vae::Caches;
using vae::Conv;
using Mode = vae::Resample::Mode;

namespace {

// One nn.Sequential of layers; in Wan2.2 each level also has a parameter-free shortcut around it.
struct Stage {
  std::vector<vae::Layer> layers;
  std::optional<vae::AvgDown3D> down_shortcut;
  std::optional<vae::DupUp3D> up_shortcut;

  Tensor forward(Tensor x, Caches& caches, bool first_chunk) const {
    // The Wan2.2 shortcuts read the stage input again; otherwise the layers may take it over.
    Tensor h = down_shortcut || up_shortcut ? x : std::move(x);
    for (const auto& l : layers) h = vae::forward(l, std::move(h), caches);
    if (down_shortcut) return ops::add(h, down_shortcut->forward(x));
    if (up_shortcut) return ops::add(h, up_shortcut->forward(x, first_chunk));
    return h;
  }
};

// Encoder3d and Decoder3d share their outer shape: conv1, the levels, middle (Res, Attn, Res), head.
struct Coder {
  Conv conv1;
  std::vector<Stage> stages;
  vae::ResidualBlock mid0, mid2;
  vae::AttentionBlock mid1;
  Tensor head_gamma;
  vae::PartialSumConv head_conv;

  // conv1: in → first; middle at width `mid`; head: last → out.
  void load_ends(const io::WeightStore& ws, const std::string& p, int64_t in, int64_t first, int64_t width,
                 int64_t last, int64_t out, const VaeLoadOptions& opt) {
    conv1 = Conv::load(ws, p + ".conv1", {first, in, 3, 3, 3}, opt);
    mid0 = vae::ResidualBlock::load(ws, p + ".middle.0", width, width, opt);
    mid1 = vae::AttentionBlock::load(ws, p + ".middle.1", width, opt);
    mid2 = vae::ResidualBlock::load(ws, p + ".middle.2", width, width, opt);
    head_gamma = place_weight(ws.load(p + ".head.0.gamma", {last, 1, 1, 1}), DType::F32, opt.device).reshape({last});
    head_conv = vae::PartialSumConv::load(ws, p + ".head.2", {out, last, 3, 3, 3}, opt);
  }

  // Encoder: conv1, levels, middle, head. Decoder: conv1, middle, levels, head.
  Tensor forward(const Tensor& x, Caches& caches, bool decoder, bool first_chunk) const {
    Tensor h = vae::causal_conv(conv1, x, caches.next());
    auto middle = [&] {
      h = mid0.forward(std::move(h), caches);
      h = mid1.forward(h);
      h = mid2.forward(std::move(h), caches);
    };
    if (decoder) middle();
    for (const auto& s : stages) h = s.forward(std::move(h), caches, first_chunk);
    if (!decoder) middle();
    Tensor a = vae::norm_silu(h, head_gamma);
    h = Tensor();  // not needed by the head's convolution (at full resolution in the decoder)
    return head_conv.forward(a, caches.next());
  }
};

std::vector<int64_t> widths(int64_t base, const std::vector<int64_t>& mult_with_first) {
  std::vector<int64_t> d;
  for (int64_t m : mult_with_first) d.push_back(base * m);
  return d;
}

bool has_scale(const std::vector<double>& scales, double s) {
  for (double v : scales)
    if (v == s) return true;
  return false;
}

Coder build_encoder(const io::WeightStore& ws, const VaeConfig& c, const VaeLoadOptions& opt) {
  std::vector<int64_t> m{1};
  m.insert(m.end(), c.dim_mult.begin(), c.dim_mult.end());
  const auto dims = widths(c.dim, m);
  const size_t levels = c.dim_mult.size();
  Coder e;
  e.load_ends(ws, "encoder", c.version == 22 ? 12 : 3, dims[0], dims.back(), dims.back(), 2 * c.z_dim, opt);
  if (c.version == 21) {  // one flat Sequential: encoder.downsamples.K
    Stage s;
    int k = 0;
    double scale = 1.0;
    for (size_t i = 0; i < levels; ++i) {
      int64_t in = dims[i];
      const int64_t out = dims[i + 1];
      for (int64_t r = 0; r < c.num_res_blocks; ++r, in = out) {
        s.layers.emplace_back(vae::ResidualBlock::load(ws, "encoder.downsamples." + std::to_string(k++), in, out, opt));
        if (has_scale(c.attn_scales, scale))
          s.layers.emplace_back(vae::AttentionBlock::load(ws, "encoder.downsamples." + std::to_string(k++), out, opt));
      }
      if (i + 1 != levels) {
        const Mode mode = c.temperal_downsample[i] ? Mode::Downsample3d : Mode::Downsample2d;
        s.layers.emplace_back(vae::Resample::load(ws, "encoder.downsamples." + std::to_string(k++), out, mode, 0, opt));
        scale /= 2.0;
      }
    }
    e.stages.push_back(std::move(s));
  } else {  // Down_ResidualBlock per level: encoder.downsamples.i.downsamples.j + AvgDown3D shortcut
    for (size_t i = 0; i < levels; ++i) {
      const std::string p = "encoder.downsamples." + std::to_string(i) + ".downsamples.";
      const bool down = i + 1 != levels, tdown = i < c.temperal_downsample.size() && c.temperal_downsample[i];
      Stage s;
      int64_t in = dims[i];
      const int64_t out = dims[i + 1];
      int j = 0;
      for (int64_t r = 0; r < c.num_res_blocks; ++r, in = out)
        s.layers.emplace_back(vae::ResidualBlock::load(ws, p + std::to_string(j++), in, out, opt));
      if (down)
        s.layers.emplace_back(vae::Resample::load(ws, p + std::to_string(j++), out,
                                                  tdown ? Mode::Downsample3d : Mode::Downsample2d, 0, opt));
      s.down_shortcut = vae::AvgDown3D{dims[i], out, tdown ? 2 : 1, down ? 2 : 1};
      if ((dims[i] * s.down_shortcut->ft * s.down_shortcut->fs * s.down_shortcut->fs) % out)
        fail(ErrorKind::InvalidArgument, "Wan2.2 VAE: encoder level ", i, " cannot average ", dims[i], " into ", out, " channels");
      e.stages.push_back(std::move(s));
    }
  }
  return e;
}

Coder build_decoder(const io::WeightStore& ws, const VaeConfig& c, const VaeLoadOptions& opt) {
  std::vector<int64_t> m{c.dim_mult.back()};
  m.insert(m.end(), c.dim_mult.rbegin(), c.dim_mult.rend());
  const auto dims = widths(c.decoder_dim(), m);
  const size_t levels = c.dim_mult.size();
  std::vector<bool> tup(c.temperal_downsample.begin(), c.temperal_downsample.begin() + static_cast<long>(levels - 1));
  std::reverse(tup.begin(), tup.end());
  Coder d;
  d.load_ends(ws, "decoder", c.z_dim, dims[0], dims[0], dims.back(), c.version == 22 ? 12 : 3, opt);
  if (c.version == 21) {  // flat: decoder.upsamples.K; upsampling convs halve the channels
    Stage s;
    int k = 0;
    double scale = 1.0 / std::pow(2.0, static_cast<double>(levels) - 2);
    for (size_t i = 0; i < levels; ++i) {
      int64_t in = dims[i];
      const int64_t out = dims[i + 1];
      if (i >= 1 && i <= 3) in /= 2;  // as the reference (which hard-codes levels 1..3)
      for (int64_t r = 0; r <= c.num_res_blocks; ++r, in = out) {
        s.layers.emplace_back(vae::ResidualBlock::load(ws, "decoder.upsamples." + std::to_string(k++), in, out, opt));
        if (has_scale(c.attn_scales, scale))
          s.layers.emplace_back(vae::AttentionBlock::load(ws, "decoder.upsamples." + std::to_string(k++), out, opt));
      }
      if (i + 1 != levels) {
        const Mode mode = tup[i] ? Mode::Upsample3d : Mode::Upsample2d;
        s.layers.emplace_back(vae::Resample::load(ws, "decoder.upsamples." + std::to_string(k++), out, mode, out / 2, opt));
        scale *= 2.0;
      }
    }
    d.stages.push_back(std::move(s));
  } else {
    // Up_ResidualBlock per level: decoder.upsamples.i.upsamples.j + DupUp3D shortcut. (wan-spec §5.4
    // lists these levels one step off: with dims [1024, 1024, 1024, 512, 256] level 1 keeps 1024, level 2
    // goes to 512 with the 2D upsample, level 3 to 256 with a shortcut conv — as the checkpoint shapes say.)
    for (size_t i = 0; i < levels; ++i) {
      const std::string p = "decoder.upsamples." + std::to_string(i) + ".upsamples.";
      const bool up = i + 1 != levels, tu = i < tup.size() && tup[i];
      Stage s;
      int64_t in = dims[i];
      const int64_t out = dims[i + 1];
      int j = 0;
      for (int64_t r = 0; r <= c.num_res_blocks; ++r, in = out)
        s.layers.emplace_back(vae::ResidualBlock::load(ws, p + std::to_string(j++), in, out, opt));
      if (up) {
        s.layers.emplace_back(vae::Resample::load(ws, p + std::to_string(j++), out, tu ? Mode::Upsample3d : Mode::Upsample2d, out, opt));
        s.up_shortcut = vae::DupUp3D{dims[i], out, tu ? 2 : 1, 2};
        if ((out * s.up_shortcut->ft * 4) % dims[i])
          fail(ErrorKind::InvalidArgument, "Wan2.2 VAE: decoder level ", i, " cannot spread ", dims[i], " over ", out, " channels");
      }
      d.stages.push_back(std::move(s));
    }
  }
  return d;
}

// dst[:, t0 : t0 + n] = src (both channels-first [C, T, H, W]); views, so any device.
void put_frames(Tensor& dst, const Tensor& src, int64_t t0) {
  for (int64_t c = 0; c < dst.size(0); ++c) dst[c].slice(t0, t0 + src.size(1)).copy_from(src[c]);
}

}  // namespace

struct WanVAE::Impl {
  VaeConfig cfg;
  Coder encoder, decoder;
  VaeLoadOptions opt;
  Conv conv1, conv2;                 // top level: encoder output → (mu, log_var); latent → decoder input
  std::vector<float> mean, inv_std;  // the reference's scale = [mean, 1/std] in f32
};

WanVAE::WanVAE(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WanVAE::~WanVAE() = default;
WanVAE::WanVAE(WanVAE&&) noexcept = default;
WanVAE& WanVAE::operator=(WanVAE&&) noexcept = default;
const VaeConfig& WanVAE::config() const { return impl_->cfg; }
Device WanVAE::device() const { return impl_->opt.device; }

WanVAE WanVAE::load(const io::WeightStore& w, const VaeConfig& cfg, const VaeLoadOptions& opt) {
  cfg.validate(w.source());
  auto impl = std::make_unique<Impl>();
  impl->cfg = cfg;
  impl->opt = opt;
  impl->encoder = build_encoder(w, cfg, opt);
  impl->decoder = build_decoder(w, cfg, opt);
  impl->conv1 = Conv::load(w, "conv1", {2 * cfg.z_dim, 2 * cfg.z_dim, 1, 1, 1}, opt);
  impl->conv2 = Conv::load(w, "conv2", {cfg.z_dim, cfg.z_dim, 1, 1, 1}, opt);
  impl->mean = cfg.latent_mean;
  for (float s : cfg.latent_std) impl->inv_std.push_back(1.0f / s);
  return WanVAE(std::move(impl));
}

WanVAE WanVAE::load(const std::string& weights_path, const std::string& config_path, const VaeLoadOptions& opt) {
  std::shared_ptr<io::WeightStore> store = vae_official_names(io::open_weights(weights_path));
  VaeConfigFields given;
  if (!config_path.empty()) given = read_vae_config(config_path);
  return load(*store, resolve_vae_config(given, *store), opt);
}

Shape WanVAE::latent_shape(const Shape& v) const {
  const VaeConfig& c = impl_->cfg;
  const int64_t s = c.spatial_stride();
  if (v.size() != 4 || v[0] != 3)
    fail(ErrorKind::InvalidArgument, "VAE encode: video has shape ", shape_str(v), "; expected [3, T, H, W] (RGB in [-1, 1])");
  if (v[1] < 1 || v[2] < 1 || v[3] < 1 || v[2] % s || v[3] % s)
    fail(ErrorKind::InvalidArgument, "VAE encode: video ", shape_str(v), ": height and width must be positive multiples of ",
         s, " and there must be at least one frame");
  return {c.z_dim, 1 + (v[1] - 1) / 4, v[2] / s, v[3] / s};
}

Shape WanVAE::video_shape(const Shape& z) const {
  const VaeConfig& c = impl_->cfg;
  const int64_t s = c.spatial_stride();
  if (z.size() != 4 || z[0] != c.z_dim || z[1] < 1 || z[2] < 1 || z[3] < 1)
    fail(ErrorKind::InvalidArgument, "VAE decode: latent has shape ", shape_str(z), "; expected [", c.z_dim,
         ", t, h, w] with t, h, w ≥ 1");
  return {3, 1 + 4 * (z[1] - 1), z[2] * s, z[3] * s};
}

Tensor WanVAE::encode(const Tensor& video, const VaeProgress& progress) const {
  const Impl& m = *impl_;
  const Shape out_shape = latent_shape(video.shape());
  const int64_t z = m.cfg.z_dim, chunks = out_shape[1];
  const Device dev = m.opt.device;
  Tensor latent = Tensor::empty(out_shape, DType::F32, dev);
  Caches caches;
  // Chunks [f0], [f1..f4], [f5..f8], …: each yields one latent frame. Frames past 1+4(chunks−1) are
  // never read (the reference drops them too).
  for (int64_t i = 0; i < chunks; ++i) {
    const int64_t t0 = i == 0 ? 0 : 1 + 4 * (i - 1), t1 = i == 0 ? 1 : t0 + 4;
    // Any dtype and device in, one chunk converted and moved at a time. The network runs in the
    // matmul dtype (bf16 on a device, as the reference's bf16 VAE; f32 on the CPU): every op keeps
    // its input's dtype, so converting the input decides it.
    Tensor x = ops::narrow(video, 1, t0, t1).to(m.opt.matmul_dtype).to(dev);
    if (m.cfg.version == 22) x = vae::patchify2(x);
    caches.start_chunk();
    Tensor h = vae::pointwise_conv(m.conv1, m.encoder.forward(x, caches, false, false));
    put_frames(latent, ops::narrow(h, 0, 0, z), i);  // mu; the log-variance half is unused
    if (progress) progress(i + 1, chunks);
  }
  // (mu − mean) · (1/std), per channel, in f32 as the reference: a host round trip of the small latent.
  Tensor host = latent.to(Device::CPU);
  float* p = host.data<float>();
  const int64_t per = host.numel() / z;
  for (int64_t c = 0; c < z; ++c)
    for (int64_t k = 0; k < per; ++k) p[c * per + k] = (p[c * per + k] - m.mean[static_cast<size_t>(c)]) * m.inv_std[static_cast<size_t>(c)];
  return host.to(dev);
}

void WanVAE::decode_stream(const Tensor& zin, const FrameSink& sink, const VaeProgress& progress) const {
  const Impl& m = *impl_;
  const Shape out_shape = video_shape(zin.shape());
  const int64_t z = m.cfg.z_dim, frames = zin.size(1);
  // z / (1/std) + mean: the reference divides by the stored reciprocal.
  Tensor mu = zin.to(Device::CPU).to(DType::F32).clone();
  float* p = mu.data<float>();
  const int64_t per = mu.numel() / z;
  for (int64_t c = 0; c < z; ++c)
    for (int64_t k = 0; k < per; ++k) p[c * per + k] = p[c * per + k] / m.inv_std[static_cast<size_t>(c)] + m.mean[static_cast<size_t>(c)];
  Tensor x = vae::pointwise_conv(m.conv2, mu.to(m.opt.device));

  Caches caches;
  int64_t t = 0;
  for (int64_t i = 0; i < frames; ++i) {  // one latent frame at a time: 1 video frame, then 4 each
    caches.start_chunk();
    // In the matmul dtype, as the encoder (see encode).
    Tensor y = m.decoder.forward(ops::narrow(x, 1, i, i + 1).to(m.opt.matmul_dtype), caches, true, i == 0);
    if (m.cfg.version == 22) y = vae::unpatchify2(y);
    X2V_CHECK(t + y.size(1) <= out_shape[1] && y.size(2) == out_shape[2] && y.size(3) == out_shape[3]);
    y = y.to(DType::F32);  // callers get f32 frames whatever the network ran in
    sink(ops::clamp(y, -1.f, 1.f), y);
    t += y.size(1);
    if (progress) progress(i + 1, frames);
  }
  X2V_CHECK(t == out_shape[1]);
}

Tensor WanVAE::decode(const Tensor& z, Tensor* unclamped, const VaeProgress& progress) const {
  const Shape out_shape = video_shape(z.shape());
  Tensor out = Tensor::empty(out_shape, DType::F32, device());
  Tensor raw = unclamped ? Tensor::empty(out_shape, DType::F32, device()) : Tensor();
  int64_t t = 0;
  decode_stream(
      z,
      [&](const Tensor& clamped, const Tensor& y) {
        put_frames(out, clamped, t);
        if (unclamped) put_frames(raw, y, t);
        t += y.size(1);
      },
      progress);
  if (unclamped) *unclamped = raw;
  return out;
}

}  // namespace x2v::models::wan
