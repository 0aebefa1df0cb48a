#include "models/wan/detect.h"
#include <sstream>
#include "models/wan/vae.h"
#include "models/wan/t5.h"
#include "models/wan/clip.h"

#include <filesystem>
#include <memory>

#include "models/wan/dit_config.h"
#include "models/wan/keys.h"

namespace x2v::models::wan {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::DiT: return "Wan DiT (WanModel)";
    case Kind::T5: return "umT5-XXL text encoder";
    case Kind::CLIP: return "CLIP ViT-H/14 vision tower";
    case Kind::VAE21: return "Wan2.1 VAE";
    case Kind::VAE22: return "Wan2.2 VAE";
    case Kind::Unknown: break;
  }
  return "unknown";
}

Layout detect(const io::WeightStore& w) {
  Layout l;
  for (const char* prefix : {"", "model.diffusion_model.", "diffusion_model.", "model."}) {
    std::string p = prefix;
    if (w.has(p + "head.modulation") && w.has(p + "patch_embedding.weight")) {
      l.kind = Kind::DiT;
      l.prefix = p;
      return l;
    }
  }
  if (w.has("scale_shift_table") && w.has("patch_embedding.weight")) {
    l.kind = Kind::DiT;
    l.diffusers = true;
    return l;
  }
  if (w.has("token_embedding.weight") && w.has("blocks.0.attn.q.weight")) l.kind = Kind::T5;
  else if (w.has("shared.weight") && w.has("encoder.block.0.layer.0.SelfAttention.q.weight")) l.kind = Kind::T5;
  else if (w.has("visual.patch_embedding.weight")) l.kind = Kind::CLIP;
  // Wan2.2's decoder nests its residual blocks (upsamples.i.upsamples.j); test that before the
  // middle-block key both versions share.
  else if (w.has("decoder.upsamples.0.upsamples.0.residual.2.weight")) l.kind = Kind::VAE22;
  else if (w.has("decoder.middle.0.residual.0.gamma")) l.kind = Kind::VAE21;
  return l;
}

namespace {

std::string ints(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// The configuration line of a non-DiT network, as its loader would infer it.
std::string encoder_config(Kind kind, const std::shared_ptr<io::WeightStore>& w) {
  std::ostringstream os;
  if (kind == Kind::T5) {
    T5Config c = infer_t5_config(*t5_official_view(w));
    os << "vocab " << c.vocab << ", dim " << c.dim << ", dim_attn " << c.dim_attn << ", dim_ffn " << c.dim_ffn
       << ", num_heads " << c.num_heads << ", num_layers " << c.num_layers << ", num_buckets " << c.num_buckets
       << ", shared_pos " << (c.shared_pos ? "true" : "false");
  } else if (kind == Kind::CLIP) {
    ClipConfig c = infer_clip_config(*clip_official_view(w));
    os << "dim " << c.dim << ", image_size " << c.image_size << ", patch_size " << c.patch_size << ", num_layers "
       << c.num_layers << ", mlp_dim " << c.mlp_dim << ", num_heads " << c.num_heads
       << " (heads are not visible in the shapes: ViT-H/14's 16 unless --config says otherwise)";
  } else {
    VaeConfig c = resolve_vae_config({}, *vae_official_names(w));
    os << "Wan" << (c.version == 22 ? "2.2" : "2.1") << " VAE, dim " << c.dim;
    if (c.dec_dim) os << ", dec_dim " << c.dec_dim;
    os << ", z_dim " << c.z_dim << ", dim_mult " << ints(c.dim_mult) << ", num_res_blocks " << c.num_res_blocks;
  }
  return os.str();
}

}  // namespace

std::vector<std::string> describe(const io::WeightStore& w) {
  Layout l = detect(w);
  std::vector<std::string> out;
  std::string model = std::string("model: ") + kind_name(l.kind);
  // describe() borrows the store; the renaming views need shared ownership, so hand them a non-owning one.
  std::shared_ptr<io::WeightStore> borrowed(const_cast<io::WeightStore*>(&w), [](io::WeightStore*) {});
  if (l.kind == Kind::Unknown) {
    out.push_back(model);
    return out;
  }
  if (l.kind != Kind::DiT) {
    out.push_back(model);
    try {
      out.push_back("config: " + encoder_config(l.kind, borrowed));
      out.push_back("config source: inferred from the tensor shapes");
    } catch (const Error& e) {
      out.push_back(std::string("config: cannot be inferred: ") + e.what());
    }
    return out;
  }
  out.push_back(model + (l.diffusers ? " (diffusers names)" : l.prefix.empty() ? " (official names)" : " (names prefixed " + l.prefix + ")"));
  try {
    auto named = dit_official_names(borrowed, l);
    DitConfigFields given;
    std::filesystem::path beside = std::filesystem::path(w.source()).parent_path() / "config.json";
    std::error_code ec;
    std::string from = "inferred from the tensor shapes";
    if (std::filesystem::is_regular_file(beside, ec)) {
      given = read_dit_config(beside.string());
      from = "from " + beside.string() + ", checked against the tensors";
    }
    DitConfig c = resolve_dit_config(given, *named);
    out.push_back("config: " + c.summary());
    out.push_back("config source: " + from);
  } catch (const Error& e) {
    out.push_back(std::string("config: cannot be inferred: ") + e.what());
  }
  return out;
}

}  // namespace x2v::models::wan
