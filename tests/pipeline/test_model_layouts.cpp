// The published folder layouts, built from the fixture weights: a Wan-AI folder with a sharded DiT
// (index + two shards) and the PyTorch .pth T5 and VAE, a ComfyUI split_files folder whose DiT
// carries the `model.diffusion_model.` prefix, and a LightX2V folder with the DiT in
// distill_models/. Each runs end to end through the T5 and gives the same video as the same files
// passed one by one.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io/weights.h"
#include "pipeline/demo.h"
#include "pipeline/model_dir.h"
#include "pipeline/pipeline.h"
#include "testutil.h"

namespace x2v::pipeline {
namespace {
namespace fs = std::filesystem;

std::string fx(const std::string& f) { return test::fixture("wan21/" + f); }

std::string dit_config_json() {
  std::ifstream in(fx("meta.json"));
  return nlohmann::json::parse(in).at("dit_t2v").at("config").dump();
}

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

void link(const fs::path& target, const fs::path& at) {
  fs::create_directories(at.parent_path());
  fs::create_symlink(target, at);
}

GenerateRequest base_request(const std::string& out) {
  GenerateRequest r;
  r.prompt = "two dogs swimming across a wide river";
  r.width = 32;
  r.height = 32;
  r.frames = 5;
  r.steps = 2;
  r.seed = 11;
  r.output_tensor = out;
  return r;
}

class ModelLayouts : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(test::temp_dir());
    put(fs::path(*root_) / "tok/spiece.model", train_demo_tokenizer());
    // The reference run: every file given explicitly.
    GenerateRequest r = base_request(*root_ + "/ref.safetensors");
    r.model.dit = fx("dit_t2v.safetensors");
    put(fs::path(*root_) / "cfg/config.json", dit_config_json());
    r.model.dit_config = *root_ + "/cfg/config.json";
    r.model.t5 = fx("t5.safetensors");
    r.model.tokenizer = *root_ + "/tok";
    r.model.vae = fx("vae.safetensors");
    ref_ = new std::vector<float>(generate(resolve(r)).video.to_vector());
  }
  static void TearDownTestSuite() {
    delete ref_;
    delete root_;
  }
  static std::string* root_;
  static std::vector<float>* ref_;
};
std::string* ModelLayouts::root_ = nullptr;
std::vector<float>* ModelLayouts::ref_ = nullptr;

TEST_F(ModelLayouts, WanAiShardedWithPth) {
  const fs::path d = test::temp_dir();
  auto dit = io::open_weights(fx("dit_t2v.safetensors"));
  std::vector<std::pair<std::string, Tensor>> a, b;
  nlohmann::json map = nlohmann::json::object();
  for (const auto& n : dit->names()) {
    const bool first = n.rfind("blocks.1.", 0) != 0;
    (first ? a : b).emplace_back(n, dit->load(n));
    map[n] = first ? "diffusion_pytorch_model-00001-of-00002.safetensors" : "diffusion_pytorch_model-00002-of-00002.safetensors";
  }
  io::write_safetensors((d / "diffusion_pytorch_model-00001-of-00002.safetensors").string(), a);
  io::write_safetensors((d / "diffusion_pytorch_model-00002-of-00002.safetensors").string(), b);
  put(d / kDitIndex, nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", map}}.dump());
  put(d / kConfigFile, dit_config_json());
  link(fx("t5.bf16.pth"), d / kT5File);
  link(fx("vae.fp32.pth"), d / kVaeFile);
  link(fs::path(*root_) / "tok/spiece.model", d / kTokenizerDir / "spiece.model");

  GenerateRequest r = base_request(d / "out.safetensors");
  r.model.model_dir = d.string();
  EXPECT_EQ(find_model_files(r.model, {}).dit, (d / kDitIndex).string());
  EXPECT_EQ(generate(resolve(r)).video.to_vector(), *ref_);
}

TEST_F(ModelLayouts, ComfyUISplitFilesWithPrefix) {
  const fs::path d = test::temp_dir();
  auto dit = io::open_weights(fx("dit_t2v.safetensors"));
  std::vector<std::pair<std::string, Tensor>> t;
  for (const auto& n : dit->names()) t.emplace_back("model.diffusion_model." + n, dit->load(n));
  fs::create_directories(d / "split_files/diffusion_models");
  io::write_safetensors((d / "split_files/diffusion_models/wan2.1_t2v_tiny_bf16.safetensors").string(), t);
  link(fx("t5.safetensors"), d / "split_files/text_encoders/umt5_tiny.safetensors");
  link(fx("vae.safetensors"), d / "split_files/vae/wan_2.1_vae.safetensors");

  GenerateRequest r = base_request(d / "out.safetensors");
  r.model.model_dir = d.string();
  r.model.tokenizer = *root_ + "/tok";
  // ComfyUI ships no config.json: the heads come from head_dim 128 (dim 256 -> 2), the rest from shapes.
  EXPECT_TRUE(find_model_files(r.model, {}).dit_config.empty());
  EXPECT_EQ(generate(resolve(r)).video.to_vector(), *ref_);
}

TEST_F(ModelLayouts, LightX2VDistillFolder) {
  const fs::path d = test::temp_dir();
  link(fx("dit_t2v.safetensors"), d / "distill_models/wan2.1_t2v_tiny_lightx2v_4step.safetensors");
  put(d / kConfigFile, dit_config_json());
  link(fx("t5.bf16.pth"), d / kT5File);
  link(fx("vae.fp32.pth"), d / kVaeFile);
  link(fs::path(*root_) / "tok/spiece.model", d / kTokenizerDir / "spiece.model");

  GenerateRequest r = base_request(d / "out.safetensors");
  r.model.model_dir = d.string();
  EXPECT_EQ(find_model_files(r.model, {}).layout, "LightX2V");
  EXPECT_EQ(generate(resolve(r)).video.to_vector(), *ref_);
  // Distilled sampling over the folder: runs, and differs from the base sampling.
  r.step_list = {1000, 750, 500, 250};
  r.steps.reset();
  r.output_tensor = (d / "distilled.safetensors").string();
  EXPECT_NE(generate(resolve(r)).video.to_vector(), *ref_);
}

}  // namespace
}  // namespace x2v::pipeline
