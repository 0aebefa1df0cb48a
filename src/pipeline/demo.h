// The demo model: a tiny Wan2.1 T2V model with random weights, written to a folder in the Wan-AI
// layout (config.json, diffusion_pytorch_model.safetensors, a T5 and a VAE under their official
// tensor names, google/umt5-xxl/spiece.model trained in process with SentencePiece), so that
// `x2v generate --demo` runs the real loading path and the real pipeline with no download. The
// video it makes is random-weight output (coloured noise), not a picture of the prompt.
//
// The tensor lists are generated from each network's configuration the way the reference modules
// register their parameters; tests compare them with the fixture checkpoints.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace x2v::pipeline {

using TensorShapes = std::vector<std::pair<std::string, Shape>>;

struct DitShapeConfig {
  int64_t dim = 256, ffn_dim = 512, freq_dim = 256, text_dim = 64, in_dim = 16, out_dim = 16, num_layers = 2;
  int64_t num_heads = 2;  // head_dim 128 as in every released Wan model
  bool i2v = false;       // img_emb and the k_img/v_img branch
};
// WanModel's parameters (wan-spec §8.2), official names.
TensorShapes wan_dit_shapes(const DitShapeConfig& c);

struct VaeShapeConfig {
  int64_t dim = 16, z_dim = 16, num_res_blocks = 2;
  std::vector<int64_t> dim_mult{1, 2, 4, 4};
  std::vector<bool> temperal_downsample{false, true, true};
};
// WanVAE_'s parameters (Encoder3d, Decoder3d, conv1, conv2; no attention scales), official names.
TensorShapes wan_vae_shapes(const VaeShapeConfig& c);

struct T5ShapeConfig {
  int64_t vocab = 512, dim = 64, dim_attn = 64, dim_ffn = 160, num_heads = 4, num_layers = 2, num_buckets = 32;
};
// T5Encoder's parameters (per-block relative position tables), official names.
TensorShapes wan_t5_shapes(const T5ShapeConfig& c);

struct ClipShapeConfig {
  int64_t dim = 80, image_size = 28, patch_size = 14, num_layers = 3, mlp_dim = 320, head_out = 32;
};
// The open-clip ViT vision tower's parameters (`visual.*`, incl. the unused post_norm and head).
TensorShapes wan_clip_shapes(const ClipShapeConfig& c);

// Random values for a parameter, scaled by what it is (norm gains near 1, small biases, weights
// ~ N(0, 1/fan_in)), so activations stay in range through the tiny networks.
Tensor demo_init(const std::string& name, const Shape& shape, uint64_t seed);

// Trains a small SentencePiece unigram model (pad 0, eos 1, unk 2, as umT5) on generated English
// captions; returns the serialized model (the bytes of a spiece.model).
std::string train_demo_tokenizer(int vocab_size = 400);

struct DemoModelInfo {
  std::string dir;
  int64_t vocab = 0;
  DitShapeConfig dit;
  T5ShapeConfig t5;
  VaeShapeConfig vae;
  ClipShapeConfig clip;  // I2V only: ViT-H/14's token count and width (257 x 1280), two thin blocks
};
// Writes the demo model into `dir` (created if needed): T2V, or I2V with a CLIP tower and an I2V
// DiT. Deterministic for a seed.
DemoModelInfo write_demo_model(const std::string& dir, uint64_t seed = 2024, bool i2v = false);

// The demo's generation settings: a small size, few steps, short clip.
inline constexpr int kDemoWidth = 256, kDemoHeight = 160, kDemoFrames = 17, kDemoSteps = 10;
inline constexpr const char* kDemoPrompt = "a red fox running through fresh snow at sunrise, cinematic";

struct GenerateRequest;
// Fills what a demo request left open with the demo's settings (prompt, size or pixel budget,
// frames, steps unless a step list is given, seed 42); InvalidArgument if it names a model.
void apply_demo_defaults(GenerateRequest& r);

}  // namespace x2v::pipeline
