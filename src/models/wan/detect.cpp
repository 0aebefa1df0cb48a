#include "models/wan/detect.h"

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
  else if (w.has("decoder.middle.0.residual.0.gamma")) l.kind = Kind::VAE21;
  else if (w.has("decoder.upsamples.0.upsamples.0.residual.2.weight")) l.kind = Kind::VAE22;
  return l;
}

std::vector<std::string> describe(const io::WeightStore& w) {
  Layout l = detect(w);
  std::vector<std::string> out;
  std::string model = std::string("model: ") + kind_name(l.kind);
  if (l.kind != Kind::DiT) {
    out.push_back(model);
    return out;
  }
  out.push_back(model + (l.diffusers ? " (diffusers names)" : l.prefix.empty() ? " (official names)" : " (names prefixed " + l.prefix + ")"));
  // describe() borrows the store; the renaming view needs shared ownership, so hand it a non-owning one.
  std::shared_ptr<io::WeightStore> borrowed(const_cast<io::WeightStore*>(&w), [](io::WeightStore*) {});
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
