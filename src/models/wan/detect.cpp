#include "models/wan/detect.h"

#include <sstream>

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
  else if (w.has("decoder.middle.0.residual.0.gamma")) l.kind = Kind::VAE21;
  else if (w.has("decoder.upsamples.0.upsamples.0.residual.2.weight")) l.kind = Kind::VAE22;
  return l;
}

std::vector<std::string> describe(const io::WeightStore& w) {
  Layout l = detect(w);
  std::vector<std::string> out;
  std::ostringstream os;
  os << "model: " << kind_name(l.kind);
  if (l.kind == Kind::DiT) {
    os << (l.diffusers ? " (diffusers names)" : l.prefix.empty() ? " (official names)" : " (prefix " + l.prefix + ")");
    out.push_back(os.str());
    std::string p = l.diffusers ? "" : l.prefix;
    Shape pe = w.meta(p + "patch_embedding.weight").shape;
    if (pe.size() == 5) {
      std::ostringstream c;
      bool i2v = w.has(p + (l.diffusers ? "condition_embedder.image_embedder.norm1.weight" : "img_emb.proj.0.weight"));
      c << "config: dim " << pe[0] << ", in_dim " << pe[1] << ", model_type " << (i2v ? "i2v" : (pe[1] == 48 ? "ti2v" : "t2v"));
      out.push_back(c.str());
    }
  } else {
    out.push_back(os.str());
  }
  return out;
}

}  // namespace x2v::models::wan
