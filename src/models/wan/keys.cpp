#include "models/wan/keys.h"

#include <array>
#include <cctype>
#include <string_view>
#include <utility>

namespace x2v::models::wan {

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Module paths, diffusers → official. Parameters keep their leaf name (`weight`, `bias`) except
// the two modulation tables, which diffusers stores as bare parameters named `scale_shift_table`.
constexpr std::array<std::pair<std::string_view, std::string_view>, 12> kTopModules{{
    {"condition_embedder.time_embedder.linear_1", "time_embedding.0"},
    {"condition_embedder.time_embedder.linear_2", "time_embedding.2"},
    {"condition_embedder.text_embedder.linear_1", "text_embedding.0"},
    {"condition_embedder.text_embedder.linear_2", "text_embedding.2"},
    {"condition_embedder.time_proj", "time_projection.1"},
    {"condition_embedder.image_embedder.norm1", "img_emb.proj.0"},
    {"condition_embedder.image_embedder.ff.net.0.proj", "img_emb.proj.1"},
    {"condition_embedder.image_embedder.ff.net.2", "img_emb.proj.3"},
    {"condition_embedder.image_embedder.norm2", "img_emb.proj.4"},
    {"proj_out", "head.head"},
    {"patch_embedding", "patch_embedding"},
    {"scale_shift_table", "head.modulation"},
}};

// Inside `blocks.N.`. Note the swap: diffusers' `norm2` is the affine cross-attention LayerNorm
// that the official code calls `norm3` (diffusers' own norm3 has no parameters).
constexpr std::array<std::pair<std::string_view, std::string_view>, 19> kBlockModules{{
    {"scale_shift_table", "modulation"},
    {"attn1.to_q", "self_attn.q"},
    {"attn1.to_k", "self_attn.k"},
    {"attn1.to_v", "self_attn.v"},
    {"attn1.to_out.0", "self_attn.o"},
    {"attn1.norm_q", "self_attn.norm_q"},
    {"attn1.norm_k", "self_attn.norm_k"},
    {"attn2.to_q", "cross_attn.q"},
    {"attn2.to_k", "cross_attn.k"},
    {"attn2.to_v", "cross_attn.v"},
    {"attn2.to_out.0", "cross_attn.o"},
    {"attn2.norm_q", "cross_attn.norm_q"},
    {"attn2.norm_k", "cross_attn.norm_k"},
    {"attn2.add_k_proj", "cross_attn.k_img"},
    {"attn2.add_v_proj", "cross_attn.v_img"},
    {"attn2.norm_added_k", "cross_attn.norm_k_img"},
    {"norm2", "norm3"},
    {"ffn.net.0.proj", "ffn.0"},
    {"ffn.net.2", "ffn.2"},
}};

// `module.leaf` where module matches a table entry exactly and leaf is weight/bias, or the whole
// name is a bare-parameter entry.
template <size_t N>
std::optional<std::string> map_module(std::string_view name, const std::array<std::pair<std::string_view, std::string_view>, N>& table) {
  for (const auto& [from, to] : table) {
    if (name == from) return std::string(to);
    if (starts_with(name, from) && name.size() > from.size() && name[from.size()] == '.') {
      std::string_view leaf = name.substr(from.size() + 1);
      if (leaf == "weight" || leaf == "bias") return std::string(to) + "." + std::string(leaf);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string dit_name_from_diffusers(const std::string& name) {
  std::string_view n = name;
  if (n == "condition_embedder.image_embedder.pos_embed") return "img_emb.emb_pos";
  if (starts_with(n, "blocks.")) {
    size_t i = 7;
    while (i < n.size() && std::isdigit(static_cast<unsigned char>(n[i]))) ++i;
    if (i > 7 && i < n.size() && n[i] == '.') {
      std::string_view rest = n.substr(i + 1);
      if (auto m = map_module(rest, kBlockModules)) return std::string(n.substr(0, i + 1)) + *m;
    }
    return name;
  }
  if (auto m = map_module(n, kTopModules)) return *m;
  return name;
}

std::shared_ptr<io::WeightStore> dit_official_names(std::shared_ptr<io::WeightStore> store, const Layout& layout) {
  if (layout.diffusers)
    return io::rename_weights(std::move(store), [](const std::string& n) { return std::optional(dit_name_from_diffusers(n)); },
                              "diffusers names");
  if (!layout.prefix.empty()) {
    const std::string p = layout.prefix;
    return io::rename_weights(
        std::move(store),
        [p](const std::string& n) -> std::optional<std::string> {
          if (n.size() > p.size() && n.compare(0, p.size(), p) == 0) return n.substr(p.size());
          return std::nullopt;
        },
        "prefix " + p + " stripped");
  }
  return store;
}

}  // namespace x2v::models::wan
