#include "models/wan/dit.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "models/wan/detect.h"
#include "models/wan/keys.h"
#include "ops/ops.h"

namespace x2v::models::wan {

namespace {

// ---------------------------------------------------------------------------------------------
// Loading

class Loader {
 public:
  Loader(const io::WeightStore& w, const DitLoadOptions& opt) : w_(w), opt_(opt) {}

  Tensor get(const std::string& name, const Shape& shape, DType dtype) {
    used_.insert(name);
    Tensor t = w_.load(name, shape);
    if (t.dtype() != dtype) t = t.to(dtype);
    if (t.device() != opt_.device) t = t.to(opt_.device);
    return t;
  }
  Tensor f32(const std::string& name, const Shape& shape) { return get(name, shape, DType::F32); }
  LinearW linear(const std::string& p, int64_t out, int64_t in, bool matmul = true) {
    return {get(p + ".weight", {out, in}, matmul ? opt_.matmul_dtype : DType::F32), f32(p + ".bias", {out})};
  }
  // A block's linear. Its output has the activation dtype, and the GEMM adds the bias in the output's
  // dtype, so the bias is stored as the value every call would round it to (one conversion per weight,
  // not one small kernel per call: about ten per block on CUDA).
  LinearW block_linear(const std::string& p, int64_t out, int64_t in) {
    return {get(p + ".weight", {out, in}, opt_.matmul_dtype),
            get(p + ".bias", {out}, dit_activation_dtype(opt_.device))};
  }
  NormW norm(const std::string& p, int64_t d) { return {f32(p + ".weight", {d}), f32(p + ".bias", {d})}; }

  void check_all_used() const {
    std::vector<std::string> extra;
    for (const auto& n : w_.names())
      if (!used_.count(n)) extra.push_back(n);
    if (extra.empty()) return;
    for (const auto& n : extra)
      if (n == "scaled_fp8" || n.ends_with(".scale_weight") || n.ends_with(".scale_input"))
        fail(ErrorKind::Unsupported, w_.source(), ": a \"scaled fp8\" checkpoint (per-tensor scales such as \"", n,
             "\"); x2v does not read those yet: use a bf16, fp16 or fp32 file");
    std::string list;
    for (size_t i = 0; i < extra.size() && i < 5; ++i) list += (i ? ", " : "") + extra[i];
    if (extra.size() > 5) list += ", ... (" + std::to_string(extra.size()) + " in all)";
    fail(ErrorKind::BadFile, w_.source(), ": tensors the Wan DiT configuration does not use: ", list,
         " (a file of another model variant, or a config that does not match it)");
  }

 private:
  const io::WeightStore& w_;
  const DitLoadOptions& opt_;
  std::set<std::string> used_;
};

}  // namespace

DitWeights load_dit_weights(const io::WeightStore& w, const DitConfig& c, const DitLoadOptions& opt) {
  c.validate(w.source());
  Loader ld(w, opt);
  const int64_t D = c.dim, pv = c.patch_volume();
  const auto& p = c.patch_size;
  DitWeights d;
  d.patch_embedding = {ld.get("patch_embedding.weight", {D, c.in_dim, p[0], p[1], p[2]}, opt.matmul_dtype).reshape({D, c.in_dim * pv}),
                       ld.f32("patch_embedding.bias", {D})};
  d.text_embedding_0 = ld.linear("text_embedding.0", D, c.text_dim);
  d.text_embedding_2 = ld.linear("text_embedding.2", D, D);
  // The reference runs the time MLP in f32 (an autocast-free island): never narrowed.
  d.time_embedding_0 = ld.linear("time_embedding.0", D, c.freq_dim, false);
  d.time_embedding_2 = ld.linear("time_embedding.2", D, D, false);
  d.time_projection_1 = ld.linear("time_projection.1", 6 * D, D, false);
  if (c.clip_branch) {
    d.img_emb.proj_0 = ld.norm("img_emb.proj.0", 1280);
    d.img_emb.proj_1 = ld.linear("img_emb.proj.1", 1280, 1280);
    d.img_emb.proj_3 = ld.linear("img_emb.proj.3", D, 1280);
    d.img_emb.proj_4 = ld.norm("img_emb.proj.4", D);
    if (c.model_type == "flf2v") d.img_emb.emb_pos = ld.f32("img_emb.emb_pos", {1, 514, 1280}).reshape({514, 1280});
  }
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    DitBlock blk;
    blk.modulation = ld.f32(b + "modulation", {1, 6, D}).reshape({6, D});
    auto& sa = blk.self_attn;
    sa.q = ld.block_linear(b + "self_attn.q", D, D);
    sa.k = ld.block_linear(b + "self_attn.k", D, D);
    sa.v = ld.block_linear(b + "self_attn.v", D, D);
    sa.o = ld.block_linear(b + "self_attn.o", D, D);
    if (c.qk_norm) {
      sa.norm_q = ld.f32(b + "self_attn.norm_q.weight", {D});
      sa.norm_k = ld.f32(b + "self_attn.norm_k.weight", {D});
    }
    if (c.cross_attn_norm) blk.norm3 = ld.norm(b + "norm3", D);
    auto& ca = blk.cross_attn;
    ca.q = ld.block_linear(b + "cross_attn.q", D, D);
    ca.k = ld.block_linear(b + "cross_attn.k", D, D);
    ca.v = ld.block_linear(b + "cross_attn.v", D, D);
    ca.o = ld.block_linear(b + "cross_attn.o", D, D);
    if (c.qk_norm) {
      ca.norm_q = ld.f32(b + "cross_attn.norm_q.weight", {D});
      ca.norm_k = ld.f32(b + "cross_attn.norm_k.weight", {D});
    }
    if (c.clip_branch) {
      ca.k_img = ld.block_linear(b + "cross_attn.k_img", D, D);
      ca.v_img = ld.block_linear(b + "cross_attn.v_img", D, D);
      if (c.qk_norm) ca.norm_k_img = ld.f32(b + "cross_attn.norm_k_img.weight", {D});
    }
    blk.ffn_0 = ld.block_linear(b + "ffn.0", c.ffn_dim, D);
    blk.ffn_2 = ld.block_linear(b + "ffn.2", D, c.ffn_dim);
    d.blocks.push_back(std::move(blk));
  }
  d.head_modulation = ld.f32("head.modulation", {1, 2, D}).reshape({2, D});
  d.head_head = ld.linear("head.head", pv * c.out_dim, D, false);  // the head is an f32 island too
  ld.check_all_used();
  return d;
}

DitModel DitModel::load(const std::string& weights_path, const std::string& config_path, const DitLoadOptions& opt) {
  std::shared_ptr<io::WeightStore> store = io::open_weights(weights_path);
  Layout layout = detect(*store);
  if (layout.kind != Kind::DiT)
    fail(ErrorKind::InvalidArgument, weights_path, " holds ",
         layout.kind == Kind::Unknown ? std::string("no model x2v recognizes") : std::string("a ") + kind_name(layout.kind),
         ", not a Wan DiT (expected tensors such as patch_embedding.weight and head.modulation; `x2v info` lists them)");
  std::shared_ptr<io::WeightStore> named = dit_official_names(store, layout);
  DitConfigFields given;
  if (!config_path.empty()) {
    given = read_dit_config(config_path);
  } else {
    std::filesystem::path beside = std::filesystem::path(weights_path).parent_path() / "config.json";
    std::error_code ec;
    if (std::filesystem::is_regular_file(beside, ec)) given = read_dit_config(beside.string());
  }
  DitConfig cfg = resolve_dit_config(given, *named);
  DitWeights w = load_dit_weights(*named, cfg, opt);
  return DitModel(std::move(cfg), std::move(w));
}

// ---------------------------------------------------------------------------------------------
// Forward (wan-spec §1.2–§1.6)

namespace {

Tensor apply(const Tensor& x, const LinearW& l, ops::Act act = ops::Act::None) { return ops::linear(x, l.weight, l.bias, act); }

// [C, F, H, W] → one row per patch [F'·H'·W', C·pt·ph·pw], the patch flattened (c, kt, kh, kw) as
// the Conv3d weight is, so the patch embedding is one matmul.
Tensor patchify(const Tensor& x, const std::array<int64_t, 3>& p) {
  const int64_t C = x.size(0), F = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Fg = F / p[0], Hg = H / p[1], Wg = W / p[2];
  Tensor a = ops::permute(x.reshape({C, Fg, p[0] * H * W}), {1, 0, 2}).reshape({Fg, C * p[0], Hg, p[1], Wg, p[2]});
  return ops::permute(a, {0, 2, 4, 1, 3, 5}).reshape({Fg * Hg * Wg, C * p[0] * p[1] * p[2]});
}

// The inverse for the head output [L, pt·ph·pw·C] (C fastest) → [C, F, H, W].
Tensor unpatchify(const Tensor& h, int64_t Fg, int64_t Hg, int64_t Wg, const std::array<int64_t, 3>& p, int64_t C) {
  Tensor a = ops::permute(h.reshape({Fg, Hg * Wg, p[0], p[1] * p[2] * C}), {0, 2, 1, 3})
                 .reshape({Fg * p[0], Hg, Wg, p[1], p[2], C});
  return ops::permute(a, {5, 0, 1, 3, 2, 4}).reshape({C, Fg * p[0], Hg * p[1], Wg * p[2]});
}

// sinusoidal_embedding_1d in float64: [cos(t·ω_i), sin(t·ω_i)], ω_i = 10000^(−i/half).
Tensor sinusoid(const std::vector<float>& t, int64_t freq_dim) {
  const int64_t half = freq_dim / 2, T = static_cast<int64_t>(t.size());
  std::vector<float> v(static_cast<size_t>(T * freq_dim));
  for (int64_t r = 0; r < T; ++r)
    for (int64_t i = 0; i < half; ++i) {
      const double arg = static_cast<double>(t[static_cast<size_t>(r)]) *
                         std::pow(10000.0, -static_cast<double>(i) / static_cast<double>(half));
      v[static_cast<size_t>(r * freq_dim + i)] = static_cast<float>(std::cos(arg));
      v[static_cast<size_t>(r * freq_dim + half + i)] = static_cast<float>(std::sin(arg));
    }
  return Tensor::from_f32(v, {T, freq_dim});
}

// Chunk k of n along the middle of a modulation m [T, n·D]: a row [D] when T = 1 (one timestep
// for all tokens), else per token [T, D].
Tensor chunk(const Tensor& m, int64_t k, int64_t n) {
  const int64_t T = m.size(0), D = m.size(1) / n;
  if (T == 1) return m.reshape({n, D})[k];
  return ops::narrow(m.reshape({T, n, D}), 1, k, k + 1).reshape({T, D});
}

struct Grid {
  int64_t F, H, W;
};

struct CrossKV {
  Tensor k, v;
};
// One block's cross-attention keys (RMS-normed where the model norms q and k) and values of the
// context tokens t [n, dim], split into heads.
CrossKV cross_kv(const DitConfig& c, const LinearW& wk, const LinearW& wv, const Tensor& norm_k, const Tensor& t,
                 DType act) {
  const int64_t H = c.num_heads, Dh = c.head_dim();
  Tensor k = ops::linear(t, wk.weight, wk.bias, ops::Act::None, act);
  if (c.qk_norm) k = ops::rms_norm(k, norm_k, static_cast<float>(c.eps));
  return {k.reshape({t.size(0), H, Dh}), ops::linear(t, wv.weight, wv.bias, ops::Act::None, act).reshape({t.size(0), H, Dh})};
}

}  // namespace

DitContext DitModel::embed_context(const Tensor& context, const Tensor& clip_fea, const DitObserver& obs) const {
  const DitConfig& c = cfg_;
  if (!context.defined() || context.dim() != 2 || context.size(1) != c.text_dim)
    fail(ErrorKind::InvalidArgument, "DiT: context must be [tokens, ", c.text_dim, "] (text encoder output), got ",
         context.defined() ? shape_str(context.shape()) : std::string("nothing"));
  if (context.size(0) > c.text_len)
    fail(ErrorKind::InvalidArgument, "DiT: context has ", context.size(0), " tokens, more than text_len ", c.text_len);
  DitContext ctx;
  // Zero rows up to text_len, embedded like real ones and attended unmasked, as the reference does.
  Tensor text = context.dtype() == DType::F32 ? context : context.to(DType::F32);
  if (text.device() != w_.text_embedding_0.bias.device()) text = text.to(w_.text_embedding_0.bias.device());
  if (context.size(0) < c.text_len)
    text = ops::concat({text, Tensor::zeros({c.text_len - context.size(0), c.text_dim}, DType::F32, text.device())}, 0);
  const DType act = activation_dtype();
  ctx.text = ops::linear(ops::linear(text, w_.text_embedding_0.weight, w_.text_embedding_0.bias, ops::Act::GeluTanh, act),
                         w_.text_embedding_2.weight, w_.text_embedding_2.bias, ops::Act::None, act);
  if (obs) obs("context_embedded", ctx.text);
  ctx.image = embed_image(clip_fea);
  for (const DitBlock& b : w_.blocks) {
    const DitCrossAttention& ca = b.cross_attn;
    CrossKV t = cross_kv(c, ca.k, ca.v, ca.norm_k, ctx.text, act);
    ctx.text_k.push_back(t.k);
    ctx.text_v.push_back(t.v);
    if (!c.clip_branch) continue;
    CrossKV i = cross_kv(c, ca.k_img, ca.v_img, ca.norm_k_img, ctx.image, act);
    ctx.image_k.push_back(i.k);
    ctx.image_v.push_back(i.v);
  }
  return ctx;
}

// img_emb of the CLIP features (undefined for a model without the CLIP branch).
Tensor DitModel::embed_image(const Tensor& clip_fea) const {
  const DitConfig& c = cfg_;
  if (!c.clip_branch) {
    if (clip_fea.defined())
      fail(ErrorKind::InvalidArgument, "DiT: clip_fea was given, but this ", c.model_type,
           " model has no CLIP image branch (no img_emb weights)");
    return Tensor();
  }
  const int64_t n = c.clip_tokens();
  if (!clip_fea.defined())
    fail(ErrorKind::InvalidArgument, "DiT: this ", c.model_type, " model needs clip_fea [", n,
         ", 1280] (the CLIP image features)");
  if (clip_fea.numel() != n * 1280 || clip_fea.size(-1) != 1280 || (clip_fea.dim() == 2 && clip_fea.size(0) != n))
    fail(ErrorKind::InvalidArgument, "DiT: clip_fea must be [", n, ", 1280]", c.model_type == "flf2v" ? " or [2, 257, 1280]" : "",
         ", got ", shape_str(clip_fea.shape()));
  Tensor img = clip_fea.to(DType::F32).reshape({n, 1280});
  if (img.device() != w_.text_embedding_0.bias.device()) img = img.to(w_.text_embedding_0.bias.device());
  if (c.model_type == "flf2v") img = ops::add(img, w_.img_emb.emb_pos);
  // MLPProj: plain torch LayerNorms (eps 1e-5) around an exact-GELU MLP.
  const DitImageEmbedding& ie = w_.img_emb;
  img = ops::layer_norm(img, ie.proj_0.weight, ie.proj_0.bias, 1e-5f);
  img = apply(apply(img, ie.proj_1, ops::Act::GeluErf), ie.proj_3);
  return ops::layer_norm(img, ie.proj_4.weight, ie.proj_4.bias, 1e-5f);
}

namespace {

class Forward {
 public:
  // `act`: the dtype of activations between ops. The residual stream is always f32; everything that
  // only feeds a matmul or attention is kept in bf16 on CUDA (where those ops round their inputs to
  // bf16 anyway, as the reference's autocast does), f32 on the CPU.
  Forward(const DitConfig& c, const DitContext& ctx, Grid g, DType act)
      : c_(c), ctx_(ctx), g_(g), H_(c.num_heads), Dh_(c.head_dim()), eps_(static_cast<float>(c.eps)), act_(act) {}

  // One WanAttentionBlock on the f32 residual stream x [L, dim]; e0 [T, 6·dim]. Each residual update
  // is applied by the norm after it, in the same pass over x. The cross-attention's norm only reads
  // x + sa·gate: that update is written with the next one, by the FFN's norm. The block's last update,
  // x += ffn·gate, is left pending for the next block's first norm (flush() applies it alone).
  void block(Tensor& x, size_t i, const DitBlock& b, const Tensor& e0) {
    const Tensor m = ops::add(e0, b.modulation.reshape({6 * c_.dim}));
    Tensor a = ops::add_layer_norm_modulate(x, pend_, {}, chunk(m, 0, 6), chunk(m, 1, 6), eps_, act_);
    const ops::Residual sa{self_attention(b.self_attn, a), chunk(m, 2, 6)};
    // Cross-attention: normed, but neither modulated nor gated.
    Tensor f;
    if (c_.cross_attn_norm) {
      const Tensor ca = cross_attention(b.cross_attn, ops::add_layer_norm(x, sa, b.norm3.weight, b.norm3.bias, eps_, act_), i);
      f = ops::add_layer_norm_modulate(x, sa, {ca, {}}, chunk(m, 3, 6), chunk(m, 4, 6), eps_, act_);
    } else {
      ops::gated_add_(x, sa.y, sa.gate);
      f = ops::add_layer_norm_modulate(x, {cross_attention(b.cross_attn, x, i), {}}, {}, chunk(m, 3, 6), chunk(m, 4, 6),
                                       eps_, act_);
    }
    pend_ = {apply(apply(f, b.ffn_0, ops::Act::GeluTanh), b.ffn_2), chunk(m, 5, 6)};
  }

  // The head's modulated norm (f32, the reference's f32 island), applying the pending update.
  Tensor head_norm(Tensor& x, const Tensor& shift, const Tensor& scale) {
    Tensor y = ops::add_layer_norm_modulate(x, pend_, {}, shift, scale, eps_, DType::F32);
    pend_ = {};
    return y;
  }

  void flush(Tensor& x) {
    if (pend_.y.defined()) ops::gated_add_(x, pend_.y, pend_.gate);
    pend_ = {};
  }

 private:
  Tensor apply(const Tensor& x, const LinearW& l, ops::Act act = ops::Act::None) const {
    return ops::linear(x, l.weight, l.bias, act, act_);
  }
  Tensor heads(const Tensor& t) const { return t.reshape({t.size(0), H_, Dh_}); }
  // WanRMSNorm over the whole dim, before the split into heads.
  Tensor qk_norm(const Tensor& t, const Tensor& w) const { return c_.qk_norm ? ops::rms_norm(t, w, eps_) : t; }
  Tensor q_or_k(const Tensor& t, const Tensor& norm_w) const {
    return c_.qk_norm ? ops::rms_norm_rope(t, norm_w, eps_, H_, g_.F, g_.H, g_.W)
                      : ops::rope_3d(heads(t), g_.F, g_.H, g_.W);
  }
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v) const {
    return ops::attention(q, k, v, 1.f / std::sqrt(static_cast<float>(Dh_)));
  }

  Tensor self_attention(const DitSelfAttention& s, const Tensor& a) const {
    Tensor q = q_or_k(apply(a, s.q), s.norm_q);
    Tensor k = q_or_k(apply(a, s.k), s.norm_k);
    Tensor v = heads(apply(a, s.v));
    return apply(attend(q, k, v).reshape({a.size(0), c_.dim}), s.o);
  }

  // Text attention plus (CLIP branch) image attention with the same query, summed before `o`; block i's
  // keys and values from the context where embed_context made them.
  Tensor cross_attention(const DitCrossAttention& s, const Tensor& x, size_t i) const {
    Tensor q = heads(qk_norm(apply(x, s.q), s.norm_q));
    const CrossKV t = i < ctx_.text_k.size() ? CrossKV{ctx_.text_k[i], ctx_.text_v[i]}
                                             : cross_kv(c_, s.k, s.v, s.norm_k, ctx_.text, act_);
    Tensor out = attend(q, t.k, t.v);
    if (c_.clip_branch) {
      const CrossKV im = i < ctx_.image_k.size() ? CrossKV{ctx_.image_k[i], ctx_.image_v[i]}
                                                 : cross_kv(c_, s.k_img, s.v_img, s.norm_k_img, ctx_.image, act_);
      out = ops::add(out, attend(q, im.k, im.v));
    }
    return apply(out.reshape({x.size(0), c_.dim}), s.o);
  }

  const DitConfig& c_;
  const DitContext& ctx_;
  Grid g_;
  int64_t H_, Dh_;
  float eps_;
  DType act_;
  ops::Residual pend_;  // the last block's FFN output and gate, not yet added to x
};

}  // namespace

namespace {

Tensor f32_on(const Tensor& t, Device dev) {
  Tensor r = t.dtype() == DType::F32 ? t : t.to(DType::F32);
  return r.device() == dev ? r : r.to(dev);
}

// The latent (with y for I2V/FLF2V) checked against the configuration; returns its token grid.
Grid check_latents(const DitConfig& c, const Tensor& x, const Tensor& y) {
  const auto& p = c.patch_size;
  if (!x.defined() || x.dim() != 4)
    fail(ErrorKind::InvalidArgument, "DiT: x must be a latent [C, F, H, W], got ",
         x.defined() ? shape_str(x.shape()) : std::string("nothing"));
  const int64_t F = x.size(1), H = x.size(2), W = x.size(3);
  if (c.takes_y()) {
    if (!y.defined())
      fail(ErrorKind::InvalidArgument, "DiT: this ", c.model_type, " model needs y [", c.in_dim - c.out_dim, ", ", F, ", ", H,
           ", ", W, "] (mask and image latent), concatenated to x on channels");
    if (y.dim() != 4 || y.size(1) != F || y.size(2) != H || y.size(3) != W)
      fail(ErrorKind::InvalidArgument, "DiT: y ", shape_str(y.shape()), " must have the frames and size of x ", shape_str(x.shape()));
    if (x.size(0) + y.size(0) != c.in_dim)
      fail(ErrorKind::InvalidArgument, "DiT: x ", shape_str(x.shape()), " and y ", shape_str(y.shape()), " have ",
           x.size(0) + y.size(0), " channels together; this ", c.model_type, " model takes in_dim ", c.in_dim, " (",
           c.out_dim, " noise channels + ", c.in_dim - c.out_dim, " y channels)");
  } else {
    if (y.defined())
      fail(ErrorKind::InvalidArgument, "DiT: y was given, but this ", c.model_type, " model takes no conditioning latent");
    if (x.size(0) != c.in_dim)
      fail(ErrorKind::InvalidArgument, "DiT: x ", shape_str(x.shape()), " has ", x.size(0), " channels; this ", c.model_type,
           " model takes in_dim ", c.in_dim);
  }
  if (F % p[0] || H % p[1] || W % p[2] || F == 0 || H == 0 || W == 0)
    fail(ErrorKind::InvalidArgument, "DiT: latent ", shape_str(x.shape()), " is not a whole number of ", p[0], "x", p[1], "x",
         p[2], " patches (frames x height x width)");
  const Grid g{F / p[0], H / p[1], W / p[2]};
  if (g.F > 1024 || g.H > 1024 || g.W > 1024)
    fail(ErrorKind::InvalidArgument, "DiT: latent grid ", g.F, "x", g.H, "x", g.W,
         " exceeds the 1024 positions per axis of Wan's RoPE table");
  return g;
}

// One timestep for all tokens, or one per token (Wan2.2). Equal per-token values give the
// per-sample modulation exactly (wan-spec §1.7), so they collapse to one. Integer truncation, where
// a pipeline wants it, happens before this call.
std::vector<float> check_timesteps(const Tensor& t, const Grid& g) {
  const int64_t L = g.F * g.H * g.W;
  if (!t.defined()) fail(ErrorKind::InvalidArgument, "DiT: a timestep t is needed");
  if (t.dim() > 2 || (t.numel() != 1 && (t.numel() != L || (t.dim() == 2 && t.size(0) != 1))))
    fail(ErrorKind::InvalidArgument, "DiT: t has shape ", shape_str(t.shape()), "; give one timestep (a scalar or [1]) or one per token ([",
         L, "] for this ", g.F, "x", g.H, "x", g.W, " token grid)");
  std::vector<float> tv = t.to_vector();
  if (std::all_of(tv.begin(), tv.end(), [&](float v) { return v == tv[0]; })) tv.resize(1);
  return tv;
}

}  // namespace

Tensor DitModel::forward(const Tensor& x, const Tensor& y, const Tensor& t, const DitContext& ctx,
                         const DitObserver& obs) const {
  const DitConfig& c = cfg_;
  const Grid g = check_latents(c, x, y);
  const std::vector<float> tv = check_timesteps(t, g);
  if (!ctx.text.defined() || ctx.text.dim() != 2 || ctx.text.size(1) != c.dim || c.clip_branch != ctx.image.defined())
    fail(ErrorKind::InvalidArgument, "DiT: the context was not embedded by this model (use its embed_context)");
  const Device dev = w_.head_modulation.device();
  const int64_t L = g.F * g.H * g.W, T = static_cast<int64_t>(tv.size());

  // Time: e [T, dim] modulates the head, e0 = time_projection(e) [T, 6·dim] the blocks.
  const Tensor e = apply(apply(sinusoid(tv, c.freq_dim).to(dev), w_.time_embedding_0, ops::Act::SiLU), w_.time_embedding_2);
  const Tensor e0 = apply(ops::silu(e), w_.time_projection_1);
  if (obs) obs("e0", T == 1 ? e0.reshape({6, c.dim}) : e0.reshape({L, 6, c.dim}));

  const Tensor xin = c.takes_y() ? ops::concat({f32_on(x, dev), f32_on(y, dev)}, 0) : f32_on(x, dev);
  Tensor h = apply(patchify(xin, c.patch_size), w_.patch_embedding);  // [L, dim], the f32 residual stream
  if (obs) obs("patch_embedding_out", h);

  Forward fw(c, ctx, g, activation_dtype());
  for (size_t i = 0; i < w_.blocks.size(); ++i) {
    fw.block(h, i, w_.blocks[i], e0);
    if (obs) {
      fw.flush(h);
      obs("block" + std::to_string(i) + "_out", h);
    }
  }

  // Head: LN(h)·(1 + scale) + shift with (shift, scale) = head.modulation + e, then one patch of
  // out_dim channels per token.
  const Tensor shift = ops::add(e, w_.head_modulation[0]), scale = ops::add(e, w_.head_modulation[1]);
  const Tensor out = apply(fw.head_norm(h, T == 1 ? shift.reshape({c.dim}) : shift, T == 1 ? scale.reshape({c.dim}) : scale),
                           w_.head_head);
  if (obs) obs("head_out", out);
  return unpatchify(out, g.F, g.H, g.W, c.patch_size, c.out_dim);
}

Tensor DitModel::forward(const DitInputs& in, const DitObserver& obs) const {
  return forward(in.x, in.y, in.t, embed_context(in.context, in.clip_fea, obs), obs);
}

}  // namespace x2v::models::wan
