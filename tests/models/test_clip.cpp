// The CLIP vision tower against the official Wan2.1 code's outputs (../shared/fixtures/wan21/clip.*),
// from the safetensors and the fp16 .pth, with the preprocessing checked on its own; plus config
// inference and the open_clip / Hugging Face names.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io/weights.h"
#include "models/wan/clip.h"
#include "testutil.h"

using namespace x2v;
using namespace x2v::models::wan;

namespace {

// The fixture's constructor configuration, as a --config would carry it.
EncoderConfigJson meta_config() {
  std::ifstream in(test::fixture("wan21/meta.json"));
  const nlohmann::json meta = nlohmann::json::parse(in);
  return EncoderConfigJson::parse(meta.at("clip").at("config").dump(), "meta.json clip.config");
}

io::SafeTensors fixture_io() { return io::SafeTensors::open(test::fixture("wan21/clip.io.safetensors")); }

void check_fixture(const std::string& weights) {
  io::SafeTensors io = fixture_io();
  ClipVisionEncoder enc = ClipVisionEncoder::load(test::fixture(weights), meta_config());
  const ClipConfig& c = enc.config();
  EXPECT_EQ(c.dim, 80);
  EXPECT_EQ(c.image_size, 28);
  EXPECT_EQ(c.patch_size, 14);
  EXPECT_EQ(c.num_layers, 3);
  EXPECT_EQ(c.mlp_dim, 320);
  Tensor image = io.get("image").clone();
  Tensor pre = enc.preprocess(image);
  Tensor out = enc.forward(pre);
  std::printf("%s: rel L2 preprocessed %.3g, out %.3g\n", weights.c_str(),
              test::rel_l2(pre.to_vector(), io.get("preprocessed").to_vector()),
              test::rel_l2(out.to_vector(), io.get("out").to_vector()));
  test::expect_close(pre, io.get("preprocessed"), 1e-5, weights + " preprocessed");
  test::expect_close(out, io.get("out"), 1e-4, weights + " out");
  // The network alone, on the reference's preprocessed input.
  test::expect_close(enc.forward(io.get("preprocessed").clone()), io.get("out"), 1e-4, weights + " forward");
  test::expect_close(enc.encode(image), io.get("out"), 1e-4, weights + " encode");
  // FLF2V's pair: each image encoded on its own, stacked.
  Tensor other = test::random_tensor({3, 17, 50}, 3);
  Tensor pair = enc.encode(std::vector<Tensor>{image, other});
  ASSERT_EQ(pair.shape(), (Shape{2, 5, 80}));
  test::expect_close(pair[0], io.get("out"), 1e-4, weights + " pair[0]");
  test::expect_close(pair[1], enc.encode(other), 1e-6, weights + " pair[1]");
}

ClipVisionEncoder with_heads(int64_t heads) {
  auto w = io::open_weights(test::fixture("wan21/clip.safetensors"));
  ClipConfig c = infer_clip_config(*w);
  c.num_heads = heads;
  return ClipVisionEncoder(*w, c);
}

}  // namespace

TEST(Clip, MatchesReferenceFromSafetensors) { check_fixture("wan21/clip.safetensors"); }
TEST(Clip, MatchesReferenceFromFp16Pth) { check_fixture("wan21/clip.fp16.pth"); }

TEST(Clip, HeadCountComesFromConfig) {
  // The fixture was made with 4 heads: the ViT-H default (16) must not silently pass.
  auto w = io::open_weights(test::fixture("wan21/clip.safetensors"));
  EXPECT_EQ(infer_clip_config(*w).num_heads, 16);
  io::SafeTensors io = fixture_io();
  Tensor pre = io.get("preprocessed").clone();
  EXPECT_GT(test::rel_l2(with_heads(16).forward(pre).to_vector(), io.get("out").to_vector()), 1e-3);
  test::expect_close(with_heads(4).forward(pre), io.get("out"), 1e-4, "4 heads");
  ClipConfig c = infer_clip_config(*w, EncoderConfigJson::parse(
      R"({"activation": "gelu", "dim": 80, "image_size": 28, "mlp_ratio": 4, "norm_eps": 1e-05, "num_heads": 4,
          "num_layers": 3, "patch_size": 14, "pool_type": "token", "post_norm": false, "pre_norm": true})", "meta"));
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_THROW(infer_clip_config(*w, EncoderConfigJson::parse(R"({"num_layers": 4})", "cfg")), Error);
  EXPECT_THROW(infer_clip_config(*w, EncoderConfigJson::parse(R"({"num_heads": 3})", "cfg")), Error);
  EXPECT_THROW(infer_clip_config(*w, EncoderConfigJson::parse(R"({"activation": "quick_gelu"})", "cfg")), Error);
  EXPECT_THROW(infer_clip_config(*w, EncoderConfigJson::parse(R"({"image_siz": 28})", "cfg")), Error);
  ClipConfig d;
  EXPECT_EQ(d.dim, 1280);
  EXPECT_EQ(d.num_layers, 32);
  EXPECT_EQ(d.tokens(), 257);
}

TEST(Clip, RejectsBadImages) {
  ClipVisionEncoder enc = with_heads(4);
  EXPECT_THROW(enc.preprocess(test::random_tensor({4, 10, 10}, 1)), Error);
  EXPECT_THROW(enc.preprocess(test::random_tensor({10, 10}, 1)), Error);
  EXPECT_THROW(enc.forward(test::random_tensor({3, 27, 28}, 1)), Error);
}

TEST(Clip, OpenClipAndHuggingFaceNamesGiveTheSameOutput) {
  auto w = io::open_weights(test::fixture("wan21/clip.safetensors"));
  const std::string cfg = R"({"num_heads": 4})";
  io::SafeTensors io = fixture_io();
  Tensor image = io.get("image").clone();

  // open_clip: fused in_proj, flat class/positional embeddings.
  std::vector<std::pair<std::string, Tensor>> oc = {
      {"visual.conv1.weight", w->load("visual.patch_embedding.weight")},
      {"visual.class_embedding", w->load("visual.cls_embedding").reshape({80})},
      {"visual.positional_embedding", w->load("visual.pos_embedding").reshape({5, 80})},
      {"visual.ln_pre.weight", w->load("visual.pre_norm.weight")},
      {"visual.ln_pre.bias", w->load("visual.pre_norm.bias")}};
  // Hugging Face: q/k/v apart.
  std::vector<std::pair<std::string, Tensor>> hf = {
      {"vision_model.embeddings.patch_embedding.weight", w->load("visual.patch_embedding.weight")},
      {"vision_model.embeddings.class_embedding", w->load("visual.cls_embedding").reshape({80})},
      {"vision_model.embeddings.position_embedding.weight", w->load("visual.pos_embedding").reshape({5, 80})},
      {"vision_model.pre_layrnorm.weight", w->load("visual.pre_norm.weight")},
      {"vision_model.pre_layrnorm.bias", w->load("visual.pre_norm.bias")}};
  for (int i = 0; i < 3; ++i) {
    const std::string b = "visual.transformer." + std::to_string(i) + ".";
    const std::string o = "visual.transformer.resblocks." + std::to_string(i) + ".";
    const std::string h = "vision_model.encoder.layers." + std::to_string(i) + ".";
    const std::vector<std::tuple<std::string, std::string, std::string>> same = {
        {"norm1.weight", "ln_1.weight", "layer_norm1.weight"}, {"norm1.bias", "ln_1.bias", "layer_norm1.bias"},
        {"attn.proj.weight", "attn.out_proj.weight", "self_attn.out_proj.weight"},
        {"attn.proj.bias", "attn.out_proj.bias", "self_attn.out_proj.bias"},
        {"norm2.weight", "ln_2.weight", "layer_norm2.weight"}, {"norm2.bias", "ln_2.bias", "layer_norm2.bias"},
        {"mlp.0.weight", "mlp.c_fc.weight", "mlp.fc1.weight"}, {"mlp.0.bias", "mlp.c_fc.bias", "mlp.fc1.bias"},
        {"mlp.2.weight", "mlp.c_proj.weight", "mlp.fc2.weight"}, {"mlp.2.bias", "mlp.c_proj.bias", "mlp.fc2.bias"}};
    for (const auto& [ours, ocn, hfn] : same) {
      oc.emplace_back(o + ocn, w->load(b + ours));
      hf.emplace_back(h + hfn, w->load(b + ours));
    }
    oc.emplace_back(o + "attn.in_proj_weight", w->load(b + "attn.to_qkv.weight"));
    oc.emplace_back(o + "attn.in_proj_bias", w->load(b + "attn.to_qkv.bias"));
    Tensor qkv = w->load(b + "attn.to_qkv.weight"), qkv_b = w->load(b + "attn.to_qkv.bias");
    const char* names[] = {"q", "k", "v"};
    for (int s = 0; s < 3; ++s) {
      hf.emplace_back(h + "self_attn." + names[s] + "_proj.weight", qkv.slice(s * 80, (s + 1) * 80).clone());
      hf.emplace_back(h + "self_attn." + names[s] + "_proj.bias", qkv_b.slice(s * 80, (s + 1) * 80).clone());
    }
  }
  const std::string dir = test::temp_dir();
  io::write_safetensors(dir + "/oc.safetensors", oc);
  io::write_safetensors(dir + "/hf.safetensors", hf);
  for (const char* f : {"/oc.safetensors", "/hf.safetensors"}) {
    ClipVisionEncoder enc = ClipVisionEncoder::load(dir + f, EncoderConfigJson::parse(cfg, "cfg"));
    test::expect_close(enc.encode(image), io.get("out"), 1e-4, f);
  }
  EXPECT_THROW(ClipVisionEncoder::load(test::fixture("wan21/t5.safetensors")), Error);
}
