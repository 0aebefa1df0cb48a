#include "models/wan/t5.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "models/wan/text_clean.h"
#include "models/wan/tokenizer.h"
#include "ops/ops.h"

namespace x2v::models::wan {

namespace {

constexpr const char* kT5Fields = "dim, dim_attn, dim_ffn, num_buckets, num_heads, num_layers, shared_pos, vocab";

std::string blk(int64_t i, const char* rest) { return "blocks." + std::to_string(i) + "." + rest; }

// A size from the file wins; a --config value must agree with it.
void take(int64_t& field, std::optional<int64_t> user, std::optional<int64_t> from_file, const char* name,
          const std::string& src) {
  if (from_file) {
    if (user && *user != *from_file)
      fail(ErrorKind::InvalidArgument, "config field \"", name, "\" is ", *user, " but ", src, " holds ", *from_file,
           " (remove the field or use the matching weights)");
    field = *from_file;
  } else if (user) {
    field = *user;
  }
}

}  // namespace

void T5Config::validate(const std::string& where) const {
  auto positive = [&](int64_t v, const char* n) {
    if (v < 1 || v > (int64_t{1} << 24)) fail(ErrorKind::InvalidArgument, where, ": T5 ", n, " = ", v, " is out of range");
  };
  positive(vocab, "vocab");
  positive(dim, "dim");
  positive(dim_attn, "dim_attn");
  positive(dim_ffn, "dim_ffn");
  positive(num_heads, "num_heads");
  positive(num_layers, "num_layers");
  positive(num_buckets, "num_buckets");
  if (num_layers > 1024) fail(ErrorKind::InvalidArgument, where, ": T5 num_layers = ", num_layers, " is out of range");
  if (dim_attn % num_heads)
    fail(ErrorKind::InvalidArgument, where, ": T5 dim_attn ", dim_attn, " is not divisible by num_heads ", num_heads);
  if (num_buckets < 4 || num_buckets % 2)
    fail(ErrorKind::InvalidArgument, where, ": T5 num_buckets must be even and >= 4, got ", num_buckets);
  if (max_dist <= num_buckets / 4)
    fail(ErrorKind::InvalidArgument, where, ": T5 max_dist ", max_dist, " must exceed num_buckets/4");
}

T5Config infer_t5_config(const io::WeightStore& w, EncoderConfigJson user) {
  T5Config c;
  const std::string src = w.source();
  auto shape = [&](const std::string& n) { return w.meta(n).shape; };
  auto dim2 = [&](const std::string& n, const char* what) {
    Shape s = shape(n);
    if (s.size() != 2) fail(ErrorKind::BadFile, src, ": ", n, " (", what, ") has shape ", shape_str(s), ", expected 2-d");
    return s;
  };
  const Shape emb = dim2("token_embedding.weight", "token embedding");
  int64_t layers = 0;
  while (layers < 1024 && w.has(blk(layers, "norm1.weight"))) ++layers;
  if (layers == 0) fail(ErrorKind::BadFile, src, ": no T5 blocks (blocks.0.norm1.weight is missing)");
  const Shape q = dim2(blk(0, "attn.q.weight"), "attention q");
  const Shape fc1 = dim2(blk(0, "ffn.fc1.weight"), "FFN fc1");
  const bool file_shared = w.has("pos_embedding.embedding.weight");
  const Shape pos = dim2(file_shared ? "pos_embedding.embedding.weight" : blk(0, "pos_embedding.embedding.weight"),
                         "relative position table");

  take(c.vocab, user.integer("vocab"), emb[0], "vocab", src);
  take(c.dim, user.integer("dim"), emb[1], "dim", src);
  take(c.dim_attn, user.integer("dim_attn"), q[0], "dim_attn", src);
  take(c.dim_ffn, user.integer("dim_ffn"), fc1[0], "dim_ffn", src);
  take(c.num_layers, user.integer("num_layers"), layers, "num_layers", src);
  take(c.num_buckets, user.integer("num_buckets"), pos[0], "num_buckets", src);
  take(c.num_heads, user.integer("num_heads"), pos[1], "num_heads", src);
  if (auto s = user.boolean("shared_pos"); s && *s != file_shared)
    fail(ErrorKind::InvalidArgument, "config field \"shared_pos\" is ", *s ? "true" : "false", " but ", src,
         file_shared ? " holds one shared" : " holds per-block", " relative position tables");
  c.shared_pos = file_shared;
  user.finish(kT5Fields);
  c.validate(src);
  return c;
}

T5Encoder::T5Encoder(const io::WeightStore& w, const T5Config& cfg, const T5LoadOptions& opt) : cfg_(cfg), opt_(opt) {
  cfg_.validate(w.source());
  const int64_t D = cfg_.dim, A = cfg_.dim_attn, F = cfg_.dim_ffn, P = cfg_.num_buckets, H = cfg_.num_heads;
  const bool host = opt_.device == Device::CPU;
  auto matmul = [&](const std::string& n, const Shape& s) { return place_matmul_weight(w.load(n, s), opt_); };
  // On the CPU the norm gains stay as stored too (the backend widens them exactly per op).
  auto gain = [&](const std::string& n, const Shape& s) {
    Tensor t = w.load(n, s);
    return host ? t : place_weight(t, DType::F32, opt_.device);
  };
  // Position tables, also kept transposed [H, P] in f32 on the model's device: the bias of a block
  // is then one gather, bias[h, i·L + j] = tableᵀ[h, bucket(j − i)].
  auto table = [&](const std::string& n) {
    Tensor t = w.load(n, {P, H});
    pos_t_.push_back(ops::permute(t.to(DType::F32), {1, 0}).to(opt_.device));
    return t;
  };
  w_.token_embedding = w.load("token_embedding.weight", {cfg_.vocab, D});
  w_.norm = gain("norm.weight", {D});
  if (cfg_.shared_pos) w_.pos = table("pos_embedding.embedding.weight");
  for (int64_t i = 0; i < cfg_.num_layers; ++i) {
    T5Block b;
    b.norm1 = gain(blk(i, "norm1.weight"), {D});
    b.q = matmul(blk(i, "attn.q.weight"), {A, D});
    b.k = matmul(blk(i, "attn.k.weight"), {A, D});
    b.v = matmul(blk(i, "attn.v.weight"), {A, D});
    b.o = matmul(blk(i, "attn.o.weight"), {D, A});
    b.norm2 = gain(blk(i, "norm2.weight"), {D});
    b.gate = matmul(blk(i, "ffn.gate.0.weight"), {F, D});
    b.fc1 = matmul(blk(i, "ffn.fc1.weight"), {F, D});
    b.fc2 = matmul(blk(i, "ffn.fc2.weight"), {D, F});
    if (!cfg_.shared_pos) b.pos = table(blk(i, "pos_embedding.embedding.weight"));
    w_.blocks.push_back(std::move(b));
  }
}

T5Encoder T5Encoder::load(const std::string& path, EncoderConfigJson user, const T5LoadOptions& opt) {
  std::shared_ptr<io::WeightStore> w = t5_official_view(io::open_weights(path));
  T5Config cfg = infer_t5_config(*w, std::move(user));
  return T5Encoder(*w, cfg, opt);
}

int64_t T5Encoder::bucket(int64_t rel, int64_t num_buckets, int64_t max_dist) {
  const int64_t half = num_buckets / 2;  // bidirectional: the upper half is for keys after the query
  const int64_t base = rel > 0 ? half : 0;
  const int64_t r = rel < 0 ? -rel : rel;
  const int64_t max_exact = half / 2;
  if (r < max_exact) return base + r;
  // The reference evaluates the log in f32 and truncates toward zero (.long()).
  const float ratio = std::log(static_cast<float>(r) / static_cast<float>(max_exact)) /
                      static_cast<float>(std::log(static_cast<double>(max_dist) / static_cast<double>(max_exact)));
  const int64_t large = max_exact + static_cast<int64_t>(ratio * static_cast<float>(half - max_exact));
  return base + std::min(large, half - 1);
}

Tensor T5Encoder::position_bias(const Tensor& table, int64_t L) const {
  const int64_t H = cfg_.num_heads, P = cfg_.num_buckets;
  const std::vector<float> t = table.to_vector();  // [P, H]
  // The bias only depends on j - i: look each of the 2L-1 offsets up once.
  std::vector<int64_t> b(static_cast<size_t>(2 * L - 1));
  for (int64_t d = -(L - 1); d < L; ++d) b[static_cast<size_t>(d + L - 1)] = bucket(d, P, cfg_.max_dist);
  Tensor bias = Tensor::empty({H, L, L}, DType::F32);
  float* out = bias.data<float>();
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < L; ++j)
        out[(h * L + i) * L + j] = t[static_cast<size_t>(b[static_cast<size_t>(j - i + L - 1)] * H + h)];
  return bias;
}

Tensor T5Encoder::bucket_index(int64_t L) const {
  const int64_t P = cfg_.num_buckets;
  std::vector<int64_t> b(static_cast<size_t>(2 * L - 1));
  for (int64_t d = -(L - 1); d < L; ++d) b[static_cast<size_t>(d + L - 1)] = bucket(d, P, cfg_.max_dist);
  Tensor idx = Tensor::empty({L * L}, DType::I64);
  int64_t* out = idx.data<int64_t>();
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) out[i * L + j] = b[static_cast<size_t>(j - i + L - 1)];
  return idx;
}

// Rows of the embedding table, gathered as views and converted together (the table itself stays
// in its stored dtype: 2 GB in bf16 for umT5-XXL).
Tensor T5Encoder::embed(const Tensor& ids_in) const {
  const Tensor ids = ids_in.to(Device::CPU);
  const int64_t* ip = ids.data<int64_t>();
  std::vector<Tensor> rows;
  rows.reserve(static_cast<size_t>(ids.numel()));
  for (int64_t i = 0; i < ids.numel(); ++i) {
    if (ip[i] < 0 || ip[i] >= cfg_.vocab)
      fail(ErrorKind::InvalidArgument, "T5: token id ", ip[i], " at position ", i, " is outside the vocabulary of ",
           cfg_.vocab, " (was the text tokenized with the matching spiece.model?)");
    rows.push_back(w_.token_embedding.slice(ip[i], ip[i] + 1));
  }
  return ops::concat(rows, 0).to(DType::F32).to(opt_.device);
}

// Activations between ops: bf16 on a device (the reference encoder runs in bf16; its matmuls and
// attention take bf16 operands anyway), f32 on the CPU. The residual stream stays f32.
DType T5Encoder::act() const { return opt_.device == Device::CPU ? DType::F32 : opt_.matmul_dtype; }

Tensor T5Encoder::attention(const T5Block& b, const Tensor& x, const Tensor& mask, const Tensor& bias) const {
  const int64_t L = x.size(0), H = cfg_.num_heads, Dh = cfg_.head_dim();
  const DType a_t = act();
  Tensor q = ops::linear(x, b.q, {}, ops::Act::None, a_t).reshape({L, H, Dh});
  Tensor k = ops::linear(x, b.k, {}, ops::Act::None, a_t).reshape({L, H, Dh});
  Tensor v = ops::linear(x, b.v, {}, ops::Act::None, a_t).reshape({L, H, Dh});
  // T5 folds the 1/√d into its initialization: logits are plain q·k.
  Tensor a = ops::attention(q, k, v, 1.f, bias, mask);
  return ops::linear(a.reshape({L, cfg_.dim_attn}), b.o, {}, ops::Act::None, a_t);
}

Tensor T5Encoder::ffn(const T5Block& b, const Tensor& x) const {
  const DType a_t = act();
  Tensor g = ops::linear(x, b.gate, {}, ops::Act::GeluTanh, a_t);
  return ops::linear(ops::mul(ops::linear(x, b.fc1, {}, ops::Act::None, a_t), g), b.fc2, {}, ops::Act::None, a_t);
}

Tensor T5Encoder::forward(const Tensor& ids, const Tensor& mask) const {
  if (ids.dim() != 1 || ids.dtype() != DType::I64)
    fail(ErrorKind::InvalidArgument, "T5: ids must be a 1-d int64 tensor, got ", ids.desc());
  if (mask.dim() != 1 || mask.numel() != ids.numel())
    fail(ErrorKind::InvalidArgument, "T5: mask ", mask.desc(), " must have one entry per token (", ids.numel(), ")");
  const int64_t L = ids.numel();
  if (L < 1 || L > 4096) fail(ErrorKind::InvalidArgument, "T5: ", L, " tokens; expected 1 to 4096");
  Tensor x = embed(ids);
  const bool host = opt_.device == Device::CPU;
  Tensor keep = mask;
  if (!host) {
    // No padding (what encode() runs) needs no key mask, which lets the fused attention take it.
    const std::vector<float> mv = mask.to_vector();
    const bool all_real = std::all_of(mv.begin(), mv.end(), [](float m) { return m != 0.f; });
    keep = all_real ? Tensor() : Tensor::from_f32(mv, {L}).to(opt_.device);
  }
  // bias[h, i, j] = table[bucket(j − i), h], gathered from the transposed table; the index is
  // checked and moved to the device once for all blocks.
  const Tensor idx = host ? bucket_index(L) : bucket_index(L).to(opt_.device);
  auto bias_of = [&](size_t k) { return ops::index_select(pos_t_[k], 1, idx).reshape({cfg_.num_heads, L, L}); };
  Tensor shared = cfg_.shared_pos ? bias_of(0) : Tensor();
  for (size_t k = 0; k < w_.blocks.size(); ++k) {
    const T5Block& b = w_.blocks[k];
    Tensor bias = cfg_.shared_pos ? shared : bias_of(k);
    ops::add_(x, attention(b, ops::rms_norm(x, b.norm1, cfg_.eps), keep, bias));
    ops::add_(x, ffn(b, ops::rms_norm(x, b.norm2, cfg_.eps)));
  }
  return ops::rms_norm(x, w_.norm, cfg_.eps);
}

Tensor T5Encoder::trim(const Tensor& out, const Tensor& mask) {
  int64_t n = 0;
  for (float m : mask.to_vector()) n += m > 0;
  return ops::narrow(out, 0, 0, n);
}

Tensor T5Encoder::encode(const Tokenizer& tok, const std::string& prompt) const {
  const TokenizedText t = tok.encode(clean_prompt(prompt), kWanTextLength);
  // The reference runs all 512 positions and keeps the first L_real rows. Pad keys get a logit of
  // (about) the lowest float, whose softmax weight is exactly 0, and the position bias depends only
  // on j − i, so the real rows equal a run on the real tokens alone: that is what runs here.
  Tensor ids = Tensor::empty({t.length}, DType::I64), mask = Tensor::empty({t.length}, DType::I64);
  std::copy(t.ids.begin(), t.ids.begin() + t.length, ids.data<int64_t>());
  std::copy(t.mask.begin(), t.mask.begin() + t.length, mask.data<int64_t>());
  return forward(ids, mask);
}

}  // namespace x2v::models::wan
