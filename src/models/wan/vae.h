// The Wan video VAEs (wan-spec §5): Wan2.1 (`Wan2.1_VAE.pth`, z 16, 4×8×8) and Wan2.2 (`Wan2.2_VAE.pth`,
// 2×2 pixel patchify, parameter-free shortcuts, z 48, 4×16×16).
//
// Encode and decode run the reference's chunked causal schedule: encode feeds frames [f0], [f1..f4],
// [f5..f8], …; decode feeds one latent frame at a time; every temporal conv keeps a cache of the last
// two frames it saw. Only one chunk's activations (plus the caches) are alive at once, so memory is
// bounded by the frame size, not the video length.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weights.h"
#include "models/wan/load_options.h"

namespace x2v::models::wan {

struct VaeConfig {
  int version = 21;  // 21: Wan2.1 VAE; 22: Wan2.2 VAE (found from the weights' layout)
  // The official `WanVAE_` constructor fields (the real Wan2.1 VAE by default).
  int64_t dim = 96;      // encoder base width (Wan2.2: 160)
  int64_t dec_dim = 0;   // decoder base width, Wan2.2 only (256); 0 = same as dim
  int64_t z_dim = 16;
  std::vector<int64_t> dim_mult{1, 2, 4, 4};
  int64_t num_res_blocks = 2;
  std::vector<double> attn_scales;
  std::vector<bool> temperal_downsample{false, true, true};
  // Per-channel latent statistics; empty = the published ones for z_dim 16 (Wan2.1) or 48 (Wan2.2).
  std::vector<float> latent_mean, latent_std;

  int64_t decoder_dim() const { return dec_dim > 0 ? dec_dim : dim; }
  int64_t spatial_stride() const;   // 8 (Wan2.1) or 16 (Wan2.2, with the patchify)
  int64_t temporal_stride() const;  // 4 for the released layouts: 2^(number of temporal downsamples)
  void validate(const std::string& source) const;
  std::string summary() const;
};

// The fields of a --config / config JSON object; absent fields are inferred from the weights.
// Accepts the constructor names (dim, dec_dim, z_dim, dim_mult, num_res_blocks, attn_scales,
// temperal_downsample, latent_mean, latent_std); unknown keys are an error, '_'-keys are skipped.
struct VaeConfigFields {
  std::string source;
  std::optional<int64_t> dim, dec_dim, z_dim, num_res_blocks;
  std::optional<std::vector<int64_t>> dim_mult;
  std::optional<std::vector<double>> attn_scales;
  std::optional<std::vector<bool>> temperal_downsample;
  std::optional<std::vector<float>> latent_mean, latent_std;
};
VaeConfigFields parse_vae_config(const std::string& json_text, const std::string& source);
VaeConfigFields read_vae_config(const std::string& path);
// The configuration for the weights in `w` (official names): the version, dim, dec_dim and z_dim
// come from the tensor shapes unless given (and are checked if given); the rest take the defaults.
VaeConfig resolve_vae_config(const VaeConfigFields& given, const io::WeightStore& w);

// A view of `store` under the official VAE names: diffusers `AutoencoderKLWan` names (wan-spec §8.4)
// are translated, a `first_stage_model.` or `vae.` prefix (all-in-one files) is stripped and the other
// networks' tensors hidden; official files are returned as they are.
std::shared_ptr<io::WeightStore> vae_official_names(std::shared_ptr<io::WeightStore> store);
// diffusers name → official name; unknown names come back unchanged.
std::string vae_name_from_diffusers(const std::string& name, int version);

// Progress of a long encode/decode: `done` of `total` chunks finished.
using VaeProgress = std::function<void(int64_t done, int64_t total)>;

class WanVAE {
 public:
  // Loads and checks every tensor (official names; see vae_official_names). Convolution and attention
  // weights are kept in opt.matmul_dtype, norm gains and biases in f32, all on opt.device.
  static WanVAE load(const io::WeightStore& w, const VaeConfig& cfg, const VaeLoadOptions& opt = {});
  // From a file (official or diffusers names; .safetensors, index or .pth) and an optional JSON config
  // ("" = infer everything from the weights).
  static WanVAE load(const std::string& weights_path, const std::string& config_path = "",
                     const VaeLoadOptions& opt = {});
  ~WanVAE();
  WanVAE(WanVAE&&) noexcept;
  WanVAE& operator=(WanVAE&&) noexcept;

  const VaeConfig& config() const;
  Device device() const;  // where the weights live, the work runs and the outputs are

  // Inputs may be on any device (moved a chunk at a time); outputs are f32 on device().
  // video [3, T, H, W] in [-1, 1] → normalized latent [z_dim, 1 + (T−1)/4, H/s, W/s] (s = 8 or 16).
  // As in the reference, trailing frames beyond the last 1+4n are dropped. H and W must be multiples
  // of s.
  Tensor encode(const Tensor& video, const VaeProgress& progress = {}) const;
  // z [z_dim, t, h, w] (normalized) → video [3, 1 + 4(t−1), h·s, w·s] clamped to [−1, 1]; if
  // `unclamped` is given it receives the output before clamping.
  Tensor decode(const Tensor& z, Tensor* unclamped = nullptr, const VaeProgress& progress = {}) const;

  // The same decode, handing over the video as it is produced: `sink(frames, unclamped)` once per latent
  // frame with [3, n, H, W] (n = 1 for the first latent frame, 4 after), so a caller that writes the
  // frames out never holds the whole video.
  using FrameSink = std::function<void(const Tensor& clamped, const Tensor& unclamped)>;
  void decode_stream(const Tensor& z, const FrameSink& sink, const VaeProgress& progress = {}) const;

  // Output shapes, for callers that size buffers or validate requests up front.
  Shape latent_shape(const Shape& video) const;
  Shape video_shape(const Shape& latent) const;

 private:
  struct Impl;
  explicit WanVAE(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace x2v::models::wan
