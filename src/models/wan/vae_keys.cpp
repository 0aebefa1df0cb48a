// diffusers `AutoencoderKLWan` names → the official Wan VAE names (wan-spec §8.4). Kept beside the
// DiT's map (keys.cpp); the VAE model only ever asks for official names.
#include <string_view>

#include "models/wan/vae.h"

namespace x2v::models::wan {

namespace {

bool eat(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// "12.rest" → 12, leaving "rest"; -1 when there is no leading number.
int eat_index(std::string_view& s) {
  size_t i = 0;
  int v = 0;
  while (i < s.size() && i < 6 && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0');
  if (i == 0 || i >= s.size() || s[i] != '.') return -1;
  s.remove_prefix(i + 1);
  return v;
}

// Inside a residual block: norm1/conv1/norm2/conv2/conv_shortcut → the reference's Sequential indices.
std::string resnet_inner(std::string_view s) {
  std::string_view r = s;
  if (eat(r, "norm1.")) return "residual.0." + std::string(r);
  if (eat(r, "conv1.")) return "residual.2." + std::string(r);
  if (eat(r, "norm2.")) return "residual.3." + std::string(r);
  if (eat(r, "conv2.")) return "residual.6." + std::string(r);
  if (eat(r, "conv_shortcut.")) return "shortcut." + std::string(r);
  return std::string(s);
}

// The released layouts have num_res_blocks 2: encoder levels hold 2 resnets (+ a resampler), decoder
// levels 3 (+ an upsampler), so Wan2.1's flat decoder index is 4·level + resnet (upsampler at 4·level + 3).
constexpr int kEncoderResnets = 2, kDecoderResnets = 3;

std::string coder_name(std::string_view s, bool decoder, int version) {
  std::string_view r = s;
  if (eat(r, "conv_in.")) return "conv1." + std::string(r);
  if (eat(r, "norm_out.")) return "head.0." + std::string(r);
  if (eat(r, "conv_out.")) return "head.2." + std::string(r);
  if (eat(r, "mid_block.resnets.")) {
    const int i = eat_index(r);
    if (i == 0 || i == 1) return "middle." + std::to_string(2 * i) + "." + resnet_inner(r);
    return std::string(s);
  }
  if (eat(r, "mid_block.attentions.0.")) return "middle.1." + std::string(r);
  const std::string_view blocks = decoder ? "up_blocks." : "down_blocks.";
  const std::string level_name = decoder ? "upsamples." : "downsamples.";
  if (!eat(r, blocks)) return std::string(s);
  const int level = eat_index(r);
  if (level < 0) return std::string(s);
  if (!decoder && version == 21) {  // the encoder keeps the reference's flat index
    if (r.substr(0, 9) == "resample." || r.substr(0, 10) == "time_conv.") return level_name + std::to_string(level) + "." + std::string(r);
    return level_name + std::to_string(level) + "." + resnet_inner(r);
  }
  const int per_level = decoder ? kDecoderResnets : kEncoderResnets;
  if (eat(r, "resnets.")) {
    const int j = eat_index(r);
    if (j < 0) return std::string(s);
    if (version == 21) return level_name + std::to_string((per_level + 1) * level + j) + "." + resnet_inner(r);
    return level_name + std::to_string(level) + "." + level_name + std::to_string(j) + "." + resnet_inner(r);
  }
  if (eat(r, decoder ? (version == 21 ? "upsamplers.0." : "upsampler.") : "downsampler.")) {
    if (version == 21) return level_name + std::to_string((per_level + 1) * level + per_level) + "." + std::string(r);
    return level_name + std::to_string(level) + "." + level_name + std::to_string(per_level) + "." + std::string(r);
  }
  return std::string(s);
}

}  // namespace

std::string vae_name_from_diffusers(const std::string& name, int version) {
  std::string_view r = name;
  if (eat(r, "quant_conv.")) return "conv1." + std::string(r);
  if (eat(r, "post_quant_conv.")) return "conv2." + std::string(r);
  if (eat(r, "encoder.")) return "encoder." + coder_name(r, false, version);
  if (eat(r, "decoder.")) return "decoder." + coder_name(r, true, version);
  return name;
}

std::shared_ptr<io::WeightStore> vae_official_names(std::shared_ptr<io::WeightStore> store) {
  // All-in-one checkpoints carry the VAE under a prefix beside other networks: keep only its tensors.
  for (const std::string prefix : {"first_stage_model.", "vae."}) {
    if (store->has("decoder.conv1.weight") || store->has("decoder.conv_in.weight")) break;
    if (!store->has(prefix + "decoder.conv1.weight") && !store->has(prefix + "decoder.conv_in.weight")) continue;
    store = io::rename_weights(
        store,
        [prefix](const std::string& n) -> std::optional<std::string> {
          if (n.rfind(prefix, 0) != 0) return std::nullopt;
          return n.substr(prefix.size());
        },
        store->source() + " (VAE under \"" + prefix + "\")");
  }
  if (!store->has("decoder.conv_in.weight") && !store->has("post_quant_conv.weight")) return store;
  int version = 21;
  for (const std::string& n : store->names())
    if (n.find(".upsampler.") != std::string::npos || n.find(".downsampler.") != std::string::npos) version = 22;
  const std::string label = store->source() + " (diffusers AutoencoderKLWan names)";
  return io::rename_weights(
      store, [version](const std::string& n) -> std::optional<std::string> { return vae_name_from_diffusers(n, version); },
      label);
}

}  // namespace x2v::models::wan
