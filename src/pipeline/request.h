// What the user asks for (GenerateRequest: everything optional, as typed on a command line or in a
// LightX2V-style config file) and what the pipeline runs (GenerateSettings: every value resolved to
// the reference's defaults and checked). resolve() is the one place where options are validated,
// so the CLI, the server and the Python bindings reject the same inputs with the same messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "sched/sampler.h"

namespace x2v::pipeline {

enum class Task { T2V, I2V };
const char* task_name(Task t);  // "t2v", "i2v"
Task parse_task(std::string_view s);

// Where the weights are. Each explicit path overrides the file found in model_dir.
struct ModelPaths {
  std::string model_dir;
  std::string dit;          // a .safetensors, a *.safetensors.index.json, a .pth, or a folder of them
  std::string dit_config;   // config.json of the DiT (WanModel constructor arguments)
  std::string t5;           // models_t5_umt5-xxl-enc-bf16.pth (or a safetensors conversion)
  std::string tokenizer;    // the google/umt5-xxl folder (or its tokenizer file)
  std::string clip;         // models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth
  std::string clip_config;  // the CLIP vision tower's configuration (only for non-standard towers)
  std::string vae;          // Wan2.1_VAE.pth
};

struct GenerateRequest {
  Task task = Task::T2V;
  ModelPaths model;
  std::string prompt;
  std::optional<std::string> negative_prompt;  // absent: the reference's default for the task
  std::string image;                           // I2V conditioning image (PNG or JPEG)

  std::optional<int> width, height;  // T2V output size
  std::optional<int64_t> max_area;   // I2V: pixel budget; the image's aspect picks the shape
  std::optional<int> frames;         // 4n+1
  std::optional<int> steps;
  std::optional<double> shift;
  std::optional<double> guide_scale;
  std::optional<bool> enable_cfg;
  std::optional<sched::Solver> solver;
  std::vector<int> step_list;  // distilled models: the timesteps to visit (implies euler)
  std::optional<int64_t> seed;
  std::optional<int> fps;

  // Reproduction: stored tensors that replace a stage's output.
  std::string text_embeddings;  // context [L, text_dim], context_null [L', text_dim]
  std::string clip_embeddings;  // clip_context [257, 1280]
  std::string noise;            // noise [16, T_lat, H/8, W/8]

  std::string output;         // .mp4 file, or a folder for PNG frames
  std::string output_tensor;  // safetensors with `video` [3, F, H, W] f32 in [-1, 1]

  Device device = Device::CPU;
};

// Limits beyond which a request is a typo, not a video.
constexpr int kMaxSide = 4096;
constexpr int kMinSide = 16;
constexpr int kMaxFrames = 1025;
constexpr int kMaxFps = 240;
constexpr double kMaxGuideScale = 100.0;
constexpr int64_t kMaxArea = int64_t{kMaxSide} * kMaxSide;

struct GenerateSettings {
  Task task = Task::T2V;
  ModelPaths model;
  std::string prompt, negative_prompt, image;
  int width = 0, height = 0;  // T2V; I2V fills these in once the image is read
  int64_t max_area = 0;       // I2V
  int frames = 81;
  sched::SamplerConfig sampler;
  double guide_scale = 5.0;
  bool cfg = true;  // two DiT passes per step; off for distilled models and guide scale 1
  uint64_t seed = 0;
  int fps = 16;
  std::string text_embeddings, clip_embeddings, noise;
  std::string output, output_tensor;
  Device device = Device::CPU;
  // Options that were valid but had no effect, for the user to see (the CLI prints them).
  std::vector<std::string> notes;

  int latent_frames() const { return (frames - 1) / 4 + 1; }
};

// The reference's default negative prompt for a task (Wan2.1 I2V prefixes "镜头晃动，").
const std::string& default_negative_prompt(Task t);

// Applies the reference's defaults (docs/wan-spec.md §2.2; distilled: LightX2V's) and checks every
// option; InvalidArgument naming the option and what to pass instead. A seed left out is drawn
// from the clock (the reference's -1).
GenerateSettings resolve(const GenerateRequest& r);

// Checks a T2V size or an I2V output size (both sides multiples of 16, within limits).
void check_size(int width, int height, const char* what);
// The DiT's sequence length for a video: (F−1)/4+1 latent frames of (H/16)·(W/16) patches.
int64_t video_tokens(int width, int height, int frames);
// Refuses a video whose sequence is beyond any sensible run (1280x720x81 is 75600 tokens).
constexpr int64_t kMaxTokens = 1'000'000;
void check_tokens(int width, int height, int frames);

}  // namespace x2v::pipeline
