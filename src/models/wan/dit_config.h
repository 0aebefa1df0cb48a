// The Wan DiT configuration: the official `WanModel` constructor fields (wan-spec §1.1), read from
// a config.json / --config JSON object, completed and cross-checked against the weights.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "io/weights.h"

namespace x2v::models::wan {

struct DitConfig {
  // Official constructor fields, with the constructor's defaults.
  std::string model_type = "t2v";  // t2v, i2v, flf2v (Wan2.1), ti2v (Wan2.2)
  std::array<int64_t, 3> patch_size{1, 2, 2};
  int64_t text_len = 512;
  int64_t in_dim = 16;
  int64_t dim = 2048;
  int64_t ffn_dim = 8192;
  int64_t freq_dim = 256;
  int64_t text_dim = 4096;
  int64_t out_dim = 16;
  int64_t num_heads = 16;
  int64_t num_layers = 32;
  std::array<int64_t, 2> window_size{-1, -1};
  bool qk_norm = true;
  bool cross_attn_norm = true;
  double eps = 1e-6;
  // Not a constructor field: the Wan2.1 CLIP image branch (img_emb, k_img/v_img) is present. Wan2.2
  // I2V-A14B is model_type i2v without it. Inferred from the weights.
  bool clip_branch = false;

  int64_t head_dim() const { return dim / num_heads; }
  int64_t patch_volume() const { return patch_size[0] * patch_size[1] * patch_size[2]; }
  // The conditioning latent `y` is concatenated to x on channels (I2V, FLF2V).
  bool takes_y() const { return model_type == "i2v" || model_type == "flf2v"; }
  // CLIP tokens the image branch expects: 257, or 2·257 for first+last frame.
  int64_t clip_tokens() const { return model_type == "flf2v" ? 514 : 257; }

  // Internal consistency; `source` names where the values came from in the error.
  void validate(const std::string& source) const;
  // One line for `x2v info` and logs.
  std::string summary() const;
};

// The fields a JSON object gave, before defaults and inference.
struct DitConfigFields {
  std::string source;  // file name (or "--config") for error messages
  std::optional<std::string> model_type;
  std::optional<std::array<int64_t, 3>> patch_size;
  std::optional<int64_t> text_len, in_dim, dim, ffn_dim, freq_dim, text_dim, out_dim, num_heads, num_layers;
  std::optional<std::array<int64_t, 2>> window_size;
  std::optional<bool> qk_norm, cross_attn_norm;
  std::optional<double> eps;
};

// Parse a JSON object with the official fields. Keys starting with '_' (`_class_name`,
// `_diffusers_version`) are metadata and skipped; any other unknown key is an error. A diffusers
// `WanTransformer3DModel` config (its `_class_name`) is accepted under its own field names.
DitConfigFields parse_dit_config(const std::string& json_text, const std::string& source);
DitConfigFields read_dit_config(const std::string& path);

// The complete configuration for the weights in `w` (official names): fields the JSON gave are
// checked against the tensor shapes, missing ones are inferred from them (dim, in_dim, out_dim,
// ffn_dim, freq_dim, text_dim, num_layers, patch_size, qk_norm, cross_attn_norm, model_type) or
// take the official defaults (text_len, eps, window_size). num_heads defaults to dim/128: every
// released Wan model has head_dim 128. Validated.
DitConfig resolve_dit_config(const DitConfigFields& given, const io::WeightStore& w);

}  // namespace x2v::models::wan
