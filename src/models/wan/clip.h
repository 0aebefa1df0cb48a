// The CLIP image encoder of Wan2.1 I2V/FLF2V: the vision tower of open-clip XLM-RoBERTa ViT-H/14
// (wan/modules/clip.py, VisionTransformer; docs/wan-spec.md §4), run as the pipelines run it:
// bicubic resize to image_size, CLIP mean/std, patch embedding, class token, position embedding,
// pre-norm, all blocks but the last; no post-norm, no head.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weights.h"
#include "models/wan/encoder_keys.h"
#include "models/wan/load_options.h"

namespace x2v::models::wan {

struct ClipConfig {
  int64_t dim = 1280;
  int64_t image_size = 224;
  int64_t patch_size = 14;
  int64_t num_heads = 16;
  int64_t num_layers = 32;  // blocks in the file; the output is taken after num_layers - 1 of them
  int64_t mlp_dim = 5120;   // dim · mlp_ratio
  float norm_eps = 1e-5f;
  bool pre_norm = true;     // LayerNorm after adding the position embedding
  bool post_norm = false;   // blocks are pre-LN (false) or post-LN (true)

  int64_t grid() const { return image_size / patch_size; }
  int64_t tokens() const { return grid() * grid() + 1; }
  int64_t head_dim() const { return dim / num_heads; }
  void validate(const std::string& where) const;
};

// Sizes, patch size, image size, layer count and MLP width come from the tensor shapes; `user`
// holds the reference constructor's fields (dim, image_size, patch_size, num_heads, num_layers,
// mlp_ratio, norm_eps, activation ("gelu"), pool_type ("token"), pre_norm, post_norm) and must agree
// with the file. num_heads cannot be seen in the shapes: ViT-H/14's 16 unless configured.
ClipConfig infer_clip_config(const io::WeightStore& w, EncoderConfigJson user = {});

struct ClipBlock {
  Tensor norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b;  // qkv fused: rows [q; k; v]
  Tensor norm2_w, norm2_b, fc1_w, fc1_b, fc2_w, fc2_b;
};

struct ClipWeights {
  Tensor patch;  // [dim, 3·p·p] (the conv kernel flattened: a patch embedding is a linear map)
  Tensor cls;    // [1, dim]
  Tensor pos;    // [tokens, dim]
  Tensor pre_norm_w, pre_norm_b;
  std::vector<ClipBlock> blocks;  // the first num_layers - 1 only: the last one is never run
};

// OpenAI CLIP normalization constants (the reference's transforms.Normalize).
inline constexpr float kClipMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
inline constexpr float kClipStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};

class ClipVisionEncoder {
 public:
  // `w` with the official names (wrap other layouts with clip_official_view). With the default
  // options the matmul weights stay on the host in their stored dtype; see ModelLoadOptions.
  ClipVisionEncoder(const io::WeightStore& w, const ClipConfig& cfg, const ClipLoadOptions& opt = {});
  static ClipVisionEncoder load(const std::string& path, EncoderConfigJson user = {}, const ClipLoadOptions& opt = {});

  const ClipConfig& config() const { return cfg_; }
  Device device() const { return opt_.device; }

  // image [3, H, W] in [-1, 1] (any size, any device) → the network input [3, image_size, image_size]
  // on the host: bicubic resize (align_corners=false, no antialias), x·0.5 + 0.5, (x − mean) / std.
  // (One small image: the host does it.)
  Tensor preprocess(const Tensor& image) const;
  // Network input [3, S, S] (any device) → features [tokens, dim] f32 on the model's device (the
  // output of block num_layers − 2).
  Tensor forward(const Tensor& pixels) const;
  // What the I2V pipeline computes: forward(preprocess(image)).
  Tensor encode(const Tensor& image) const { return forward(preprocess(image)); }
  // FLF2V encodes [first, last] together: [images.size(), tokens, dim].
  Tensor encode(const std::vector<Tensor>& images) const;

 private:
  Tensor block(const ClipBlock& b, const Tensor& x) const;
  ClipConfig cfg_;
  ClipLoadOptions opt_;
  ClipWeights w_;
};

}  // namespace x2v::models::wan
