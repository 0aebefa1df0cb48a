#include "models/wan/dit_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace x2v::models::wan {

using nlohmann::json;

namespace {

constexpr const char* kOfficialFields =
    "model_type, patch_size, text_len, in_dim, dim, ffn_dim, freq_dim, text_dim, out_dim, num_heads, num_layers, "
    "window_size, qk_norm, cross_attn_norm, eps";

[[noreturn]] void bad_field(const std::string& src, const std::string& key, const std::string& want, const json& v) {
  fail(ErrorKind::InvalidArgument, src, ": config field \"", key, "\" must be ", want, ", got ", v.dump());
}

int64_t as_int(const std::string& src, const std::string& key, const json& v) {
  if (!v.is_number_integer()) bad_field(src, key, "an integer", v);
  return v.get<int64_t>();
}

template <size_t N>
std::array<int64_t, N> as_ints(const std::string& src, const std::string& key, const json& v) {
  if (!v.is_array() || v.size() != N) bad_field(src, key, "a list of " + std::to_string(N) + " integers", v);
  std::array<int64_t, N> a{};
  for (size_t i = 0; i < N; ++i) a[i] = as_int(src, key, v[i]);
  return a;
}

bool as_bool(const std::string& src, const std::string& key, const json& v) {
  if (!v.is_boolean()) bad_field(src, key, "true or false", v);
  return v.get<bool>();
}

double as_number(const std::string& src, const std::string& key, const json& v) {
  if (!v.is_number()) bad_field(src, key, "a number", v);
  return v.get<double>();
}

void parse_official(const json& j, DitConfigFields& f) {
  const std::string& s = f.source;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (!k.empty() && k[0] == '_') continue;
    if (k == "model_type") {
      if (!v.is_string()) bad_field(s, k, "a string", v);
      f.model_type = v.get<std::string>();
    } else if (k == "patch_size") f.patch_size = as_ints<3>(s, k, v);
    else if (k == "text_len") f.text_len = as_int(s, k, v);
    else if (k == "in_dim") f.in_dim = as_int(s, k, v);
    else if (k == "dim") f.dim = as_int(s, k, v);
    else if (k == "ffn_dim") f.ffn_dim = as_int(s, k, v);
    else if (k == "freq_dim") f.freq_dim = as_int(s, k, v);
    else if (k == "text_dim") f.text_dim = as_int(s, k, v);
    else if (k == "out_dim") f.out_dim = as_int(s, k, v);
    else if (k == "num_heads") f.num_heads = as_int(s, k, v);
    else if (k == "num_layers") f.num_layers = as_int(s, k, v);
    else if (k == "window_size") f.window_size = as_ints<2>(s, k, v);
    else if (k == "qk_norm") f.qk_norm = as_bool(s, k, v);
    else if (k == "cross_attn_norm") f.cross_attn_norm = as_bool(s, k, v);
    else if (k == "eps") f.eps = as_number(s, k, v);
    else
      fail(ErrorKind::InvalidArgument, s, ": unknown config field \"", k, "\"; a Wan DiT config takes ", kOfficialFields,
           " (keys starting with '_' are ignored)");
  }
}

// diffusers' WanTransformer3DModel config, translated to the official fields.
void parse_diffusers(const json& j, DitConfigFields& f) {
  const std::string& s = f.source;
  std::optional<int64_t> heads, head_dim;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (!k.empty() && k[0] == '_') continue;
    if (k == "patch_size") f.patch_size = as_ints<3>(s, k, v);
    else if (k == "num_attention_heads") heads = as_int(s, k, v);
    else if (k == "attention_head_dim") head_dim = as_int(s, k, v);
    else if (k == "in_channels") f.in_dim = as_int(s, k, v);
    else if (k == "out_channels") f.out_dim = as_int(s, k, v);
    else if (k == "text_dim") f.text_dim = as_int(s, k, v);
    else if (k == "freq_dim") f.freq_dim = as_int(s, k, v);
    else if (k == "ffn_dim") f.ffn_dim = as_int(s, k, v);
    else if (k == "num_layers") f.num_layers = as_int(s, k, v);
    else if (k == "cross_attn_norm") f.cross_attn_norm = as_bool(s, k, v);
    else if (k == "eps") f.eps = as_number(s, k, v);
    else if (k == "qk_norm") {
      if (v.is_null()) f.qk_norm = false;
      else if (v == "rms_norm_across_heads") f.qk_norm = true;
      else fail(ErrorKind::Unsupported, s, ": qk_norm ", v.dump(), " is not Wan's (\"rms_norm_across_heads\" or null)");
    } else if (k == "image_dim") {
      if (!v.is_null() && as_int(s, k, v) != 1280)
        fail(ErrorKind::Unsupported, s, ": image_dim ", v.dump(), "; Wan's CLIP features have 1280 channels");
      if (!v.is_null() && !f.model_type) f.model_type = "i2v";
    } else if (k == "pos_embed_seq_len") {
      if (!v.is_null() && as_int(s, k, v) != 514)
        fail(ErrorKind::Unsupported, s, ": pos_embed_seq_len ", v.dump(), "; Wan FLF2V has 514 image tokens");
      if (!v.is_null()) f.model_type = "flf2v";
    } else if (k == "added_kv_proj_dim") {
      if (!v.is_null()) as_int(s, k, v);  // equals dim; checked against the weights through dim
    } else if (k == "rope_max_seq_len") {
      if (as_int(s, k, v) != 1024) fail(ErrorKind::Unsupported, s, ": rope_max_seq_len ", v.dump(), " (Wan uses 1024)");
    } else {
      fail(ErrorKind::InvalidArgument, s, ": unknown field \"", k, "\" in a diffusers WanTransformer3DModel config");
    }
  }
  if (heads) f.num_heads = heads;
  if (heads && head_dim) f.dim = *heads * *head_dim;
}

// A field the JSON gave must agree with the value the weights imply.
void agree(const DitConfigFields& g, const std::optional<int64_t>& given, int64_t inferred, const char* field,
           const std::string& evidence) {
  if (given && *given != inferred)
    fail(ErrorKind::InvalidArgument, g.source, ": config says ", field, " = ", *given, ", but the weights have ", field, " ",
         inferred, " (", evidence, "); the config does not belong to these weights");
}

}  // namespace

DitConfigFields parse_dit_config(const std::string& text, const std::string& source) {
  DitConfigFields f;
  f.source = source;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(ErrorKind::InvalidArgument, source, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(ErrorKind::InvalidArgument, source, ": a DiT config must be a JSON object, got ", j.type_name());
  if (j.contains("_class_name") && j["_class_name"] == "WanTransformer3DModel") parse_diffusers(j, f);
  else parse_official(j, f);
  return f;
}

DitConfigFields read_dit_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::NotFound, "cannot open the DiT config ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > 1'000'000) fail(ErrorKind::InvalidArgument, path, ": over 1 MB, not a model config");
  return parse_dit_config(ss.str(), path);
}

void DitConfig::validate(const std::string& src) const {
  static const std::set<std::string> kTypes{"t2v", "i2v", "flf2v", "ti2v"};
  if (!kTypes.count(model_type))
    fail(ErrorKind::Unsupported, src, ": model_type \"", model_type, "\" is not supported (t2v, i2v, flf2v, ti2v are)");
  for (int64_t p : patch_size)
    if (p <= 0) fail(ErrorKind::InvalidArgument, src, ": patch_size entries must be positive");
  if (window_size[0] != -1 || window_size[1] != -1)
    fail(ErrorKind::Unsupported, src, ": window_size [", window_size[0], ", ", window_size[1],
         "]: local attention windows are not implemented (every released Wan model uses [-1, -1])");
  struct Pos {
    const char* name;
    int64_t v;
  };
  for (Pos p : {Pos{"text_len", text_len}, Pos{"in_dim", in_dim}, Pos{"dim", dim}, Pos{"ffn_dim", ffn_dim},
                Pos{"freq_dim", freq_dim}, Pos{"text_dim", text_dim}, Pos{"out_dim", out_dim}, Pos{"num_heads", num_heads}})
    if (p.v <= 0) fail(ErrorKind::InvalidArgument, src, ": ", p.name, " must be positive, got ", p.v);
  if (num_layers < 0) fail(ErrorKind::InvalidArgument, src, ": num_layers must not be negative");
  if (freq_dim % 2) fail(ErrorKind::InvalidArgument, src, ": freq_dim ", freq_dim, " must be even (cos and sin halves)");
  if (dim % num_heads || head_dim() % 2)
    fail(ErrorKind::InvalidArgument, src, ": dim ", dim, " / num_heads ", num_heads,
         " must give an even whole head_dim (RoPE rotates pairs)");
  if (!(eps > 0)) fail(ErrorKind::InvalidArgument, src, ": eps must be positive, got ", eps);
  if (clip_branch && !takes_y())
    fail(ErrorKind::InvalidArgument, src, ": model_type ", model_type, " has no CLIP image branch, but the weights do");
  if (takes_y() && in_dim <= out_dim)
    fail(ErrorKind::InvalidArgument, src, ": model_type ", model_type, " concatenates y to the noise, so in_dim (", in_dim,
         ") must exceed out_dim (", out_dim, ")");
}

std::string DitConfig::summary() const {
  std::ostringstream os;
  os << "model_type " << model_type << ", dim " << dim << ", ffn_dim " << ffn_dim << ", num_heads " << num_heads
     << " (head_dim " << head_dim() << "), num_layers " << num_layers << ", in_dim " << in_dim << ", out_dim " << out_dim
     << ", text_dim " << text_dim << ", text_len " << text_len << ", freq_dim " << freq_dim << ", patch_size ["
     << patch_size[0] << ", " << patch_size[1] << ", " << patch_size[2] << "], eps " << eps
     << ", qk_norm " << (qk_norm ? "true" : "false") << ", cross_attn_norm " << (cross_attn_norm ? "true" : "false")
     << (clip_branch ? ", CLIP image branch" : "");
  return os.str();
}

DitConfig resolve_dit_config(const DitConfigFields& g, const io::WeightStore& w) {
  DitConfig c;
  const std::string src = g.source.empty() ? w.source() : g.source;
  DitConfigFields gs = g;
  gs.source = src;

  // Patch embedding [dim, in_dim, pt, ph, pw]: dim, in_dim, patch_size.
  Shape pe = w.meta("patch_embedding.weight").shape;
  if (pe.size() != 5)
    fail(ErrorKind::BadFile, w.source(), ": patch_embedding.weight is ", shape_str(pe),
         "; a Wan DiT has a Conv3d weight [dim, in_dim, 1, 2, 2]");
  const std::string pe_ev = "patch_embedding.weight is " + shape_str(pe);
  agree(gs, g.dim, pe[0], "dim", pe_ev);
  agree(gs, g.in_dim, pe[1], "in_dim", pe_ev);
  c.dim = pe[0];
  c.in_dim = pe[1];
  c.patch_size = {pe[2], pe[3], pe[4]};
  if (g.patch_size && *g.patch_size != c.patch_size)
    fail(ErrorKind::InvalidArgument, src, ": config says patch_size [", (*g.patch_size)[0], ", ", (*g.patch_size)[1], ", ",
         (*g.patch_size)[2], "], but ", pe_ev, "; the config does not belong to these weights");

  Shape te = w.meta("time_embedding.0.weight").shape;
  if (te.size() != 2) fail(ErrorKind::BadFile, w.source(), ": time_embedding.0.weight is ", shape_str(te), ", expected 2-D");
  agree(gs, g.freq_dim, te[1], "freq_dim", "time_embedding.0.weight is " + shape_str(te));
  c.freq_dim = te[1];

  Shape xe = w.meta("text_embedding.0.weight").shape;
  if (xe.size() != 2) fail(ErrorKind::BadFile, w.source(), ": text_embedding.0.weight is ", shape_str(xe), ", expected 2-D");
  agree(gs, g.text_dim, xe[1], "text_dim", "text_embedding.0.weight is " + shape_str(xe));
  c.text_dim = xe[1];

  Shape hh = w.meta("head.head.weight").shape;
  const int64_t pv = c.patch_volume();
  if (hh.size() != 2 || pv <= 0 || hh[0] % pv)
    fail(ErrorKind::BadFile, w.source(), ": head.head.weight is ", shape_str(hh), ", expected [", pv, "·out_dim, dim]");
  agree(gs, g.out_dim, hh[0] / pv, "out_dim", "head.head.weight is " + shape_str(hh));
  c.out_dim = hh[0] / pv;

  int64_t layers = 0;
  while (w.has("blocks." + std::to_string(layers) + ".modulation")) ++layers;
  for (const auto& n : w.names()) {
    if (n.rfind("blocks.", 0) != 0) continue;
    int64_t i = std::atoll(n.c_str() + 7);
    if (i >= layers)
      fail(ErrorKind::BadFile, w.source(), ": tensor \"", n, "\" belongs to block ", i, ", but blocks.", layers,
           ".modulation is missing (incomplete or mixed checkpoint?)");
  }
  agree(gs, g.num_layers, layers, "num_layers",
        layers ? "blocks.0 .. blocks." + std::to_string(layers - 1) + " are stored" : "no blocks are stored");
  c.num_layers = layers;

  if (layers > 0) {
    Shape f0 = w.meta("blocks.0.ffn.0.weight").shape;
    if (f0.size() != 2) fail(ErrorKind::BadFile, w.source(), ": blocks.0.ffn.0.weight is ", shape_str(f0), ", expected 2-D");
    agree(gs, g.ffn_dim, f0[0], "ffn_dim", "blocks.0.ffn.0.weight is " + shape_str(f0));
    c.ffn_dim = f0[0];
    const bool qk = w.has("blocks.0.self_attn.norm_q.weight");
    if (g.qk_norm && *g.qk_norm != qk)
      fail(ErrorKind::InvalidArgument, src, ": config says qk_norm ", *g.qk_norm ? "true" : "false", ", but the weights ",
           qk ? "have" : "lack", " blocks.0.self_attn.norm_q.weight; the config does not belong to these weights");
    c.qk_norm = qk;
    const bool can = w.has("blocks.0.norm3.weight");
    if (g.cross_attn_norm && *g.cross_attn_norm != can)
      fail(ErrorKind::InvalidArgument, src, ": config says cross_attn_norm ", *g.cross_attn_norm ? "true" : "false",
           ", but the weights ", can ? "have" : "lack", " blocks.0.norm3.weight; the config does not belong to these weights");
    c.cross_attn_norm = can;
  } else {
    if (g.ffn_dim) c.ffn_dim = *g.ffn_dim;
    if (g.qk_norm) c.qk_norm = *g.qk_norm;
    if (g.cross_attn_norm) c.cross_attn_norm = *g.cross_attn_norm;
  }

  c.clip_branch = w.has("img_emb.proj.0.weight");
  const bool emb_pos = w.has("img_emb.emb_pos");
  if (g.model_type) {
    c.model_type = *g.model_type;
    if (c.clip_branch && c.model_type != "i2v" && c.model_type != "flf2v")
      fail(ErrorKind::InvalidArgument, src, ": config says model_type \"", c.model_type,
           "\", but the weights hold a CLIP image branch (img_emb.*), which only i2v and flf2v models have");
    if (c.clip_branch && (c.model_type == "flf2v") != emb_pos)
      fail(ErrorKind::InvalidArgument, src, ": config says model_type \"", c.model_type, "\", but the weights ",
           emb_pos ? "have" : "lack", " img_emb.emb_pos, which exactly the flf2v models have");
  } else if (c.clip_branch) {
    c.model_type = emb_pos ? "flf2v" : "i2v";
  } else if (c.in_dim > c.out_dim) {
    c.model_type = "i2v";  // Wan2.2 I2V-A14B: y on channels, no CLIP branch
  } else {
    c.model_type = c.in_dim == 48 ? "ti2v" : "t2v";
  }

  if (g.num_heads) {
    c.num_heads = *g.num_heads;
  } else {
    if (c.dim % 128)
      fail(ErrorKind::InvalidArgument, src, ": num_heads is not given and dim ", c.dim,
           " is not a multiple of 128 (the head_dim of every released Wan model); give num_heads in the config");
    c.num_heads = c.dim / 128;
  }
  if (g.text_len) c.text_len = *g.text_len;
  if (g.window_size) c.window_size = *g.window_size;
  if (g.eps) c.eps = *g.eps;
  c.validate(src);
  return c;
}

}  // namespace x2v::models::wan
