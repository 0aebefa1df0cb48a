// Model-folder resolution over the published layouts, with overrides and clear errors.
// Designated initializers leave the other paths empty on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <filesystem>
#include <fstream>

#include "pipeline/model_dir.h"
#include "testutil.h"

namespace x2v::pipeline {
namespace {
namespace fs = std::filesystem;

void touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << "x";
}

std::string error_of(const ModelPaths& p, const Needs& n, ErrorKind kind) {
  try {
    find_model_files(p, n);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(ModelDir, WanAiSingleFile) {
  fs::path d = test::temp_dir();
  for (const char* f : {kConfigFile, kDitFile, kT5File, kVaeFile, "google/umt5-xxl/tokenizer.json"}) touch(d / f);
  ModelFiles m = find_model_files({.model_dir = d.string()}, {});
  EXPECT_EQ(m.dit, (d / kDitFile).string());
  EXPECT_EQ(m.dit_config, (d / kConfigFile).string());
  EXPECT_EQ(m.t5, (d / kT5File).string());
  EXPECT_EQ(m.tokenizer, (d / "google/umt5-xxl").string());
  EXPECT_EQ(m.vae, (d / kVaeFile).string());
  EXPECT_TRUE(m.clip.empty());
  EXPECT_EQ(m.layout, "Wan-AI");
}

TEST(ModelDir, WanAiShardedI2V) {
  fs::path d = test::temp_dir();
  for (const char* f : {kConfigFile, kDitIndex, "diffusion_pytorch_model-00001-of-00007.safetensors", kT5File,
                        kVaeFile, kClipFile, "google/umt5-xxl/spiece.model"})
    touch(d / f);
  ModelFiles m = find_model_files({.model_dir = d.string()}, {.text_encoder = true, .clip = true});
  EXPECT_EQ(m.dit, (d / kDitIndex).string());
  EXPECT_EQ(m.clip, (d / kClipFile).string());
}

TEST(ModelDir, LightX2VDistilledSingleFile) {
  fs::path d = test::temp_dir();
  for (const char* f : {kConfigFile, "distill_models/wan2.1_t2v_14b_lightx2v_4step.safetensors", kT5File, kVaeFile,
                        "google/umt5-xxl/spiece.model"})
    touch(d / f);
  ModelFiles m = find_model_files({.model_dir = d.string()}, {});
  EXPECT_EQ(m.dit, (d / "distill_models/wan2.1_t2v_14b_lightx2v_4step.safetensors").string());
  EXPECT_EQ(m.dit_config, (d / kConfigFile).string());  // LightX2V keeps it at the top
  EXPECT_EQ(m.layout, "LightX2V");
  // A single distilled file beside the standard components.
  fs::path e = test::temp_dir();
  for (const char* f : {"wan2.1_i2v_480p_lightx2v_4step.safetensors", kT5File, kVaeFile, kClipFile}) touch(e / f);
  m = find_model_files({.model_dir = e.string(), .tokenizer = (d / "google/umt5-xxl").string()}, {});
  EXPECT_EQ(m.dit, (e / "wan2.1_i2v_480p_lightx2v_4step.safetensors").string());
  EXPECT_TRUE(m.dit_config.empty());
}

TEST(ModelDir, ComfyUISplitFiles) {
  fs::path d = test::temp_dir();
  for (const char* f : {"split_files/diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors",
                        "split_files/text_encoders/umt5_xxl_fp16.safetensors", "split_files/vae/wan_2.1_vae.safetensors",
                        "split_files/clip_vision/clip_vision_h.safetensors"})
    touch(d / f);
  touch(d / "tok/spiece.model");
  ModelFiles m = find_model_files({.model_dir = d.string(), .tokenizer = (d / "tok").string()},
                                  {.text_encoder = true, .clip = true});
  EXPECT_EQ(m.dit, (d / "split_files/diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors").string());
  EXPECT_EQ(m.t5, (d / "split_files/text_encoders/umt5_xxl_fp16.safetensors").string());
  EXPECT_EQ(m.vae, (d / "split_files/vae/wan_2.1_vae.safetensors").string());
  EXPECT_EQ(m.clip, (d / "split_files/clip_vision/clip_vision_h.safetensors").string());
  EXPECT_EQ(m.layout, "ComfyUI");
  // Without a tokenizer the error says where it looked and what to pass.
  std::string e = error_of({.model_dir = d.string()}, {}, ErrorKind::NotFound);
  EXPECT_NE(e.find("google/umt5-xxl"), std::string::npos) << e;
  EXPECT_NE(e.find("--tokenizer"), std::string::npos) << e;
  // Two diffusion models: ambiguous.
  touch(d / "split_files/diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors");
  e = error_of({.model_dir = d.string(), .tokenizer = (d / "tok").string()}, {}, ErrorKind::InvalidArgument);
  EXPECT_NE(e.find("--dit"), std::string::npos) << e;
}

TEST(ModelDir, OverridesAndNeeds) {
  fs::path d = test::temp_dir();
  touch(d / "a/dit.safetensors");
  touch(d / "a/vae.safetensors");
  touch(d / "a/cfg.json");
  // Only a DiT and a VAE: enough with precomputed text and image embeddings.
  ModelFiles m = find_model_files({.dit = (d / "a/dit.safetensors").string(),
                                   .dit_config = (d / "a/cfg.json").string(),
                                   .vae = (d / "a/vae.safetensors").string()},
                                  {.text_encoder = false, .clip = false});
  EXPECT_EQ(m.dit, (d / "a/dit.safetensors").string());
  EXPECT_EQ(m.dit_config, (d / "a/cfg.json").string());
  EXPECT_TRUE(m.t5.empty());
  EXPECT_TRUE(m.tokenizer.empty());
  EXPECT_EQ(m.layout, "files given on the command line");
  // The same without the text embeddings: the T5 is needed and its error names the option.
  std::string e = error_of({.dit = (d / "a/dit.safetensors").string(), .vae = (d / "a/vae.safetensors").string()}, {},
                           ErrorKind::NotFound);
  EXPECT_NE(e.find("--t5"), std::string::npos) << e;
}

TEST(ModelDir, MissingFilesAreNamed) {
  fs::path d = test::temp_dir();
  std::string e = error_of({.model_dir = d.string()}, {}, ErrorKind::NotFound);
  EXPECT_NE(e.find(kDitFile), std::string::npos) << e;
  EXPECT_NE(e.find(d.string()), std::string::npos) << e;
  touch(d / kDitFile);
  e = error_of({.model_dir = d.string()}, {}, ErrorKind::NotFound);
  EXPECT_NE(e.find(kVaeFile), std::string::npos) << e;
  EXPECT_NE(e.find("--vae"), std::string::npos) << e;
  touch(d / kVaeFile);
  e = error_of({.model_dir = d.string()}, {}, ErrorKind::NotFound);
  EXPECT_NE(e.find(kT5File), std::string::npos) << e;
  touch(d / kT5File);
  touch(d / "google/umt5-xxl/spiece.model");
  e = error_of({.model_dir = d.string()}, {.text_encoder = true, .clip = true}, ErrorKind::NotFound);
  EXPECT_NE(e.find(kClipFile), std::string::npos) << e;
  e = error_of({.model_dir = (d / "nope").string()}, {}, ErrorKind::NotFound);
  EXPECT_NE(e.find("--model-dir"), std::string::npos) << e;
  e = error_of({.model_dir = (d / kDitFile).string()}, {}, ErrorKind::InvalidArgument);
  EXPECT_NE(e.find("not a folder"), std::string::npos) << e;
  e = error_of({.model_dir = d.string(), .vae = (d / "missing.pth").string()}, {}, ErrorKind::NotFound);
  EXPECT_NE(e.find("--vae"), std::string::npos) << e;
  EXPECT_NE(e.find("missing.pth"), std::string::npos) << e;
  e = error_of({}, {}, ErrorKind::InvalidArgument);
  EXPECT_NE(e.find("--model-dir"), std::string::npos) << e;
}

}  // namespace
}  // namespace x2v::pipeline
