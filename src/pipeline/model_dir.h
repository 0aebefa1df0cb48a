// Finding the files of a Wan model. Three layouts are recognised, and any file can be overridden:
//
//   Wan-AI (Hugging Face Wan-AI/Wan2.1-*):     config.json, diffusion_pytorch_model.safetensors or
//       diffusion_pytorch_model-0000k-of-0000n.safetensors + .index.json, models_t5_umt5-xxl-enc-bf16.pth,
//       google/umt5-xxl/, Wan2.1_VAE.pth, models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth (I2V)
//   LightX2V distilled:  the same, with the DiT as one file (wan2.1_*_lightx2v_4step.safetensors) in the
//       folder or in one of original/ fp8/ int8/ distill_models/ distill_fp8/ distill_int8/
//   ComfyUI split files: diffusion_models/, text_encoders/, vae/, clip_vision/ (optionally under
//       split_files/), one file per folder
//
// A file that is needed and missing is a NotFound error naming what was looked for and where.
#pragma once

#include <string>
#include <vector>

#include "pipeline/request.h"

namespace x2v::pipeline {

struct ModelFiles {
  std::string dit;          // a file io::open_weights opens (safetensors, index json, .pth)
  std::string dit_config;   // empty: the configuration is inferred from the weights
  std::string t5;           // empty when not needed
  std::string tokenizer;    // a folder or a tokenizer file; empty when not needed
  std::string clip;         // empty when not needed
  std::string clip_config;  // empty: the standard ViT-H/14 tower
  std::string vae;
  std::string layout;  // "Wan-AI", "LightX2V", "ComfyUI" or "files given on the command line"
};

struct Needs {
  bool text_encoder = true;  // false with --text-embeddings
  bool clip = false;         // I2V without --clip-embeddings
};

ModelFiles find_model_files(const ModelPaths& paths, const Needs& needs);
// Only the DiT and its config (the other fields empty): what to check before anything else.
ModelFiles find_dit_files(const ModelPaths& paths);

// The standard file names of the Wan-AI repositories.
inline constexpr const char* kT5File = "models_t5_umt5-xxl-enc-bf16.pth";
inline constexpr const char* kTokenizerDir = "google/umt5-xxl";
inline constexpr const char* kVaeFile = "Wan2.1_VAE.pth";
inline constexpr const char* kClipFile = "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth";
inline constexpr const char* kDitFile = "diffusion_pytorch_model.safetensors";
inline constexpr const char* kDitIndex = "diffusion_pytorch_model.safetensors.index.json";
inline constexpr const char* kConfigFile = "config.json";
// Not in the Wan-AI repositories: a small CLIP tower (tests, the demo) carries its configuration here.
inline constexpr const char* kClipConfigFile = "clip_config.json";

}  // namespace x2v::pipeline
