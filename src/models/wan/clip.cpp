#include "models/wan/clip.h"

#include <cmath>

#include "ops/ops.h"

namespace x2v::models::wan {

namespace {

constexpr const char* kClipFields =
    "dim, image_size, patch_size, num_heads, num_layers, mlp_ratio, norm_eps, activation, pool_type, pre_norm, "
    "post_norm, out_dim, attn_dropout, proj_dropout, embedding_dropout";

std::string blk(int64_t i, const std::string& rest) { return "visual.transformer." + std::to_string(i) + "." + rest; }

void agree(const char* field, int64_t user, int64_t file, const std::string& src) {
  if (user != file)
    fail(ErrorKind::InvalidArgument, "config field \"", field, "\" is ", user, " but ", src, " holds ", file,
         " (remove the field or use the matching weights)");
}

// A tensor stored as [n] or with leading 1s ([1, 1, n], [1, t, d]): loaded as `want`.
Tensor load_squeezed(const io::WeightStore& w, const std::string& name, const Shape& want) {
  const io::TensorMeta m = w.meta(name);
  if (shape_numel(m.shape) != shape_numel(want))
    fail(ErrorKind::BadFile, w.source(), ": tensor \"", name, "\" has shape ", shape_str(m.shape), ", expected ",
         shape_str(want), " (the file does not match the model configuration)");
  return w.load(name).reshape(want);
}

}  // namespace

void ClipConfig::validate(const std::string& where) const {
  auto in_range = [&](int64_t v, const char* n, int64_t hi) {
    if (v < 1 || v > hi) fail(ErrorKind::InvalidArgument, where, ": CLIP ", n, " = ", v, " is out of range");
  };
  in_range(dim, "dim", 1 << 16);
  in_range(patch_size, "patch_size", 1024);
  in_range(image_size, "image_size", 8192);
  in_range(num_heads, "num_heads", 1024);
  in_range(num_layers, "num_layers", 1024);
  in_range(mlp_dim, "mlp width", 1 << 18);
  if (image_size < patch_size)
    fail(ErrorKind::InvalidArgument, where, ": CLIP image_size ", image_size, " is smaller than patch_size ", patch_size);
  if (dim % num_heads) fail(ErrorKind::InvalidArgument, where, ": CLIP dim ", dim, " is not divisible by num_heads ", num_heads);
  if (!(norm_eps > 0)) fail(ErrorKind::InvalidArgument, where, ": CLIP norm_eps must be positive");
}

ClipConfig infer_clip_config(const io::WeightStore& w, EncoderConfigJson user) {
  ClipConfig c;
  const std::string src = w.source();
  const Shape pe = w.meta("visual.patch_embedding.weight").shape;
  if (pe.size() != 4 || pe[1] != 3 || pe[2] != pe[3] || pe[2] < 1)
    fail(ErrorKind::BadFile, src, ": visual.patch_embedding.weight has shape ", shape_str(pe),
         ", expected [dim, 3, p, p]");
  c.dim = pe[0];
  c.patch_size = pe[2];
  const int64_t tokens = shape_numel(w.meta("visual.pos_embedding").shape) / c.dim;
  const auto g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(tokens - 1))));
  if (tokens < 2 || g * g + 1 != tokens || shape_numel(w.meta("visual.pos_embedding").shape) != tokens * c.dim)
    fail(ErrorKind::BadFile, src, ": visual.pos_embedding has shape ", shape_str(w.meta("visual.pos_embedding").shape),
         ", expected [1, g·g + 1, ", c.dim, "]");
  c.image_size = g * c.patch_size;
  int64_t layers = 0;
  while (layers < 1024 && w.has(blk(layers, "norm1.weight"))) ++layers;
  if (layers == 0) fail(ErrorKind::BadFile, src, ": no CLIP blocks (visual.transformer.0.norm1.weight is missing)");
  c.num_layers = layers;
  const Shape fc1 = w.meta(blk(0, "mlp.0.weight")).shape;
  if (fc1.size() != 2) fail(ErrorKind::BadFile, src, ": ", blk(0, "mlp.0.weight"), " is not 2-d");
  c.mlp_dim = fc1[0];

  if (auto v = user.integer("dim")) agree("dim", *v, c.dim, src);
  if (auto v = user.integer("patch_size")) agree("patch_size", *v, c.patch_size, src);
  if (auto v = user.integer("image_size")) {
    // The convolution drops a remainder smaller than a patch.
    if (*v < c.patch_size || *v / c.patch_size != g) agree("image_size", *v, c.image_size, src);
    c.image_size = *v;
  }
  if (auto v = user.integer("num_layers")) agree("num_layers", *v, c.num_layers, src);
  if (auto v = user.number("mlp_ratio")) agree("mlp_ratio (as dim · mlp_ratio)", static_cast<int64_t>(c.dim * *v), c.mlp_dim, src);
  if (auto v = user.integer("num_heads")) c.num_heads = *v;
  if (auto v = user.number("norm_eps")) c.norm_eps = static_cast<float>(*v);
  if (auto v = user.string("activation"); v && *v != "gelu")
    fail(ErrorKind::Unsupported, "CLIP activation \"", *v, "\" is not supported (Wan's CLIP uses \"gelu\")");
  if (auto v = user.string("pool_type"); v && *v != "token" && *v != "token_fc")
    fail(ErrorKind::Unsupported, "CLIP pool_type \"", *v, "\" is not supported (Wan's CLIP uses \"token\")");
  if (auto v = user.boolean("pre_norm")) c.pre_norm = *v;
  if (auto v = user.boolean("post_norm")) c.post_norm = *v;
  for (const char* k : {"out_dim", "attn_dropout", "proj_dropout", "embedding_dropout"}) user.ignore(k);
  user.finish(kClipFields);
  c.validate(src);
  return c;
}

ClipVisionEncoder::ClipVisionEncoder(const io::WeightStore& w, const ClipConfig& cfg, const ClipLoadOptions& opt)
    : cfg_(cfg), opt_(opt) {
  cfg_.validate(w.source());
  const int64_t D = cfg_.dim, P = cfg_.patch_size, M = cfg_.mlp_dim;
  auto matmul = [&](const Tensor& host) { return place_matmul_weight(host, opt_); };
  auto f32 = [&](const Tensor& host) { return place_weight(host, DType::F32, opt_.device); };
  w_.patch = matmul(w.load("visual.patch_embedding.weight", {D, 3, P, P}).reshape({D, 3 * P * P}));
  w_.cls = f32(load_squeezed(w, "visual.cls_embedding", {1, D}));
  w_.pos = f32(load_squeezed(w, "visual.pos_embedding", {cfg_.tokens(), D}));
  if (cfg_.pre_norm) {
    w_.pre_norm_w = f32(w.load("visual.pre_norm.weight", {D}));
    w_.pre_norm_b = f32(w.load("visual.pre_norm.bias", {D}));
  }
  for (int64_t i = 0; i + 1 < cfg_.num_layers; ++i) {
    ClipBlock b;
    b.norm1_w = f32(w.load(blk(i, "norm1.weight"), {D}));
    b.norm1_b = f32(w.load(blk(i, "norm1.bias"), {D}));
    if (w.has(blk(i, "attn.to_qkv.weight"))) {
      b.qkv_w = matmul(w.load(blk(i, "attn.to_qkv.weight"), {3 * D, D}));
      b.qkv_b = f32(w.load(blk(i, "attn.to_qkv.bias"), {3 * D}));
    } else {  // Hugging Face keeps q, k, v apart: fused on the host, before any conversion
      std::vector<Tensor> ws, bs;
      for (const char* s : {"q", "k", "v"}) {
        ws.push_back(w.load(blk(i, std::string("attn.to_") + s + ".weight"), {D, D}));
        bs.push_back(w.load(blk(i, std::string("attn.to_") + s + ".bias"), {D}).to(DType::F32));
      }
      b.qkv_w = matmul(ops::concat(ws, 0));
      b.qkv_b = f32(ops::concat(bs, 0));
    }
    b.proj_w = matmul(w.load(blk(i, "attn.proj.weight"), {D, D}));
    b.proj_b = f32(w.load(blk(i, "attn.proj.bias"), {D}));
    b.norm2_w = f32(w.load(blk(i, "norm2.weight"), {D}));
    b.norm2_b = f32(w.load(blk(i, "norm2.bias"), {D}));
    b.fc1_w = matmul(w.load(blk(i, "mlp.0.weight"), {M, D}));
    b.fc1_b = f32(w.load(blk(i, "mlp.0.bias"), {M}));
    b.fc2_w = matmul(w.load(blk(i, "mlp.2.weight"), {D, M}));
    b.fc2_b = f32(w.load(blk(i, "mlp.2.bias"), {D}));
    w_.blocks.push_back(std::move(b));
  }
}

ClipVisionEncoder ClipVisionEncoder::load(const std::string& path, EncoderConfigJson user, const ClipLoadOptions& opt) {
  std::shared_ptr<io::WeightStore> w = clip_official_view(io::open_weights(path));
  ClipConfig cfg = infer_clip_config(*w, std::move(user));
  return ClipVisionEncoder(*w, cfg, opt);
}

Tensor ClipVisionEncoder::preprocess(const Tensor& image) const {
  if (image.dim() != 3 || image.size(0) != 3)
    fail(ErrorKind::InvalidArgument, "CLIP: the image must be [3, H, W] (RGB, channels first), got ", image.desc());
  const int64_t S = cfg_.image_size;
  // The reference stretches to S×S (no crop, aspect ratio not kept).
  Tensor x = ops::resize_bicubic(image.to(Device::CPU), S, S).reshape({3, S * S});
  const Tensor ones = Tensor::from_f32(std::vector<float>(static_cast<size_t>(S * S), 1.f), {1, S * S});
  std::vector<Tensor> ch;
  for (int64_t c = 0; c < 3; ++c) {
    // ((x·0.5 + 0.5) − mean) / std, one channel at a time
    Tensor unit = ops::axpby(ops::narrow(x, 0, c, c + 1), 0.5f, ones, 0.5f);
    ch.push_back(ops::axpby(unit, 1.f / kClipStd[c], ones, -kClipMean[c] / kClipStd[c]));
  }
  return ops::concat(ch, 0).reshape({3, S, S});
}

Tensor ClipVisionEncoder::encode(const std::vector<Tensor>& images) const {
  if (images.empty()) fail(ErrorKind::InvalidArgument, "CLIP: no images to encode");
  std::vector<Tensor> outs;
  for (const Tensor& im : images) outs.push_back(encode(im).reshape({1, cfg_.tokens(), cfg_.dim}));
  return ops::concat(outs, 0);
}

Tensor ClipVisionEncoder::block(const ClipBlock& b, const Tensor& x) const {
  const int64_t L = x.size(0), D = cfg_.dim, H = cfg_.num_heads, Dh = cfg_.head_dim();
  auto attn = [&](const Tensor& h) {
    Tensor qkv = ops::linear(h, b.qkv_w, b.qkv_b);  // [L, 3·D]: (slot, head, lane)
    Tensor q = ops::narrow(qkv, 1, 0, D).reshape({L, H, Dh});
    Tensor k = ops::narrow(qkv, 1, D, 2 * D).reshape({L, H, Dh});
    Tensor v = ops::narrow(qkv, 1, 2 * D, 3 * D).reshape({L, H, Dh});
    Tensor a = ops::attention(q, k, v, 1.f / std::sqrt(static_cast<float>(Dh)));
    return ops::linear(a.reshape({L, D}), b.proj_w, b.proj_b);
  };
  auto mlp = [&](const Tensor& h) {
    return ops::linear(ops::linear(h, b.fc1_w, b.fc1_b, ops::Act::GeluErf), b.fc2_w, b.fc2_b);
  };
  const float eps = cfg_.norm_eps;
  Tensor y = x.clone();
  if (cfg_.post_norm) {
    ops::add_(y, ops::layer_norm(attn(y), b.norm1_w, b.norm1_b, eps));
    ops::add_(y, ops::layer_norm(mlp(y), b.norm2_w, b.norm2_b, eps));
  } else {
    ops::add_(y, attn(ops::layer_norm(y, b.norm1_w, b.norm1_b, eps)));
    ops::add_(y, mlp(ops::layer_norm(y, b.norm2_w, b.norm2_b, eps)));
  }
  return y;
}

Tensor ClipVisionEncoder::forward(const Tensor& pixels) const {
  const int64_t S = cfg_.image_size, P = cfg_.patch_size, G = cfg_.grid();
  if (pixels.dim() != 3 || pixels.size(0) != 3 || pixels.size(1) != S || pixels.size(2) != S)
    fail(ErrorKind::InvalidArgument, "CLIP: the network input must be [3, ", S, ", ", S, "], got ", pixels.desc());
  // A stride-P P×P convolution without bias is a linear map of each flattened patch; a remainder
  // smaller than a patch is dropped, as by the convolution.
  Tensor x = pixels.to(DType::F32).to(opt_.device);
  if (G * P != S) x = ops::narrow(ops::narrow(x, 1, 0, G * P), 2, 0, G * P);
  Tensor patches = ops::permute(x.reshape({3, G, P, G, P}), {1, 3, 0, 2, 4}).reshape({G * G, 3 * P * P});
  Tensor tokens = ops::concat({w_.cls, ops::linear(patches, w_.patch)}, 0);
  tokens = ops::add(tokens, w_.pos);
  if (cfg_.pre_norm) tokens = ops::layer_norm(tokens, w_.pre_norm_w, w_.pre_norm_b, cfg_.norm_eps);
  for (const ClipBlock& b : w_.blocks) tokens = block(b, tokens);
  return tokens;
}

}  // namespace x2v::models::wan
