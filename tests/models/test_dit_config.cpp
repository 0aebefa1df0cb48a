// DiT configuration: parsing, inference from shapes, cross-checks against the weights, the name
// maps, and the errors a wrong file or config gets.
#include <fstream>

#include "io/safetensors.h"
#include "models/wan/detect.h"
#include "models/wan/dit.h"
#include "models/wan/keys.h"
#include "testutil.h"

namespace x2v::models::wan {
namespace {

using test::fixture;

using test::expect_error;

std::shared_ptr<io::WeightStore> official(const std::string& sub) {
  std::shared_ptr<io::WeightStore> s = io::open_weights(fixture(sub));
  return dit_official_names(s, detect(*s));
}

TEST(DitConfig, ParsesOfficialFieldsAndSkipsUnderscoreKeys) {
  DitConfigFields f = parse_dit_config(R"({"_class_name": "WanModel", "_diffusers_version": "0.30.0", "dim": 1536,
      "eps": 1e-06, "ffn_dim": 8960, "freq_dim": 256, "in_dim": 16, "model_type": "t2v", "num_heads": 12,
      "num_layers": 30, "out_dim": 16, "text_len": 512, "patch_size": [1, 2, 2], "window_size": [-1, -1],
      "qk_norm": true, "cross_attn_norm": true, "text_dim": 4096})",
                                       "config.json");
  EXPECT_EQ(*f.dim, 1536);
  EXPECT_EQ(*f.num_heads, 12);
  EXPECT_EQ(*f.num_layers, 30);
  EXPECT_EQ(*f.ffn_dim, 8960);
  EXPECT_EQ(*f.model_type, "t2v");
  EXPECT_EQ(*f.eps, 1e-6);
  EXPECT_EQ(*f.text_dim, 4096);
  EXPECT_EQ((*f.patch_size)[2], 2);
  EXPECT_TRUE(*f.qk_norm);
  EXPECT_FALSE(f.out_dim == std::nullopt);
}

TEST(DitConfig, UnknownFieldIsAnError) {
  expect_error([] { parse_dit_config(R"({"dim": 256, "num_head": 2})", "my.json"); }, ErrorKind::InvalidArgument,
               {"my.json", "unknown config field \"num_head\"", "num_heads"});
}

TEST(DitConfig, WrongTypesAndJson) {
  expect_error([] { parse_dit_config(R"({"dim": "256"})", "c.json"); }, ErrorKind::InvalidArgument,
               {"\"dim\" must be an integer", "\"256\""});
  expect_error([] { parse_dit_config(R"({"patch_size": [1, 2]})", "c.json"); }, ErrorKind::InvalidArgument,
               {"\"patch_size\" must be a list of 3 integers"});
  expect_error([] { parse_dit_config(R"({"qk_norm": 1})", "c.json"); }, ErrorKind::InvalidArgument, {"true or false"});
  expect_error([] { parse_dit_config("{\"dim\": 256", "c.json"); }, ErrorKind::InvalidArgument, {"c.json", "not valid JSON"});
  expect_error([] { parse_dit_config("[1, 2]", "c.json"); }, ErrorKind::InvalidArgument, {"must be a JSON object"});
}

TEST(DitConfig, InferredFromShapesWhenMissing) {
  DitConfig c = resolve_dit_config({}, *official("wan21/dit_i2v.safetensors"));
  EXPECT_EQ(c.model_type, "i2v");
  EXPECT_EQ(c.dim, 256);
  EXPECT_EQ(c.in_dim, 36);
  EXPECT_EQ(c.out_dim, 16);
  EXPECT_EQ(c.ffn_dim, 384);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.text_dim, 64);
  EXPECT_EQ(c.num_heads, 2);
  EXPECT_TRUE(c.clip_branch);
  EXPECT_NE(c.summary().find("head_dim 128"), std::string::npos) << c.summary();
}

TEST(DitConfig, MismatchedDimIsAnError) {
  auto w = official("wan21/dit_t2v.safetensors");
  expect_error([&] { resolve_dit_config(parse_dit_config(R"({"dim": 1536, "num_heads": 12})", "cfg.json"), *w); },
               ErrorKind::InvalidArgument, {"cfg.json", "dim = 1536", "dim 256", "patch_embedding.weight is [256, 16, 1, 2, 2]"});
  expect_error([&] { resolve_dit_config(parse_dit_config(R"({"num_layers": 30})", "cfg.json"), *w); },
               ErrorKind::InvalidArgument, {"num_layers = 30", "num_layers 2"});
  expect_error([&] { resolve_dit_config(parse_dit_config(R"({"ffn_dim": 8960})", "cfg.json"), *w); },
               ErrorKind::InvalidArgument, {"ffn_dim = 8960", "blocks.0.ffn.0.weight is [384, 256]"});
  expect_error([&] { resolve_dit_config(parse_dit_config(R"({"text_dim": 4096})", "cfg.json"), *w); },
               ErrorKind::InvalidArgument, {"text_dim = 4096", "text_dim 64"});
  expect_error([&] { resolve_dit_config(parse_dit_config(R"({"qk_norm": false})", "cfg.json"), *w); },
               ErrorKind::InvalidArgument, {"qk_norm false", "have blocks.0.self_attn.norm_q.weight"});
}

TEST(DitConfig, ModelTypeAgainstWeights) {
  auto i2v = official("wan21/dit_i2v.safetensors");
  expect_error([&] { resolve_dit_config(parse_dit_config(R"({"model_type": "t2v"})", "cfg.json"), *i2v); },
               ErrorKind::InvalidArgument, {"model_type \"t2v\"", "CLIP image branch"});
  expect_error([&] { resolve_dit_config(parse_dit_config(R"({"model_type": "flf2v"})", "cfg.json"), *i2v); },
               ErrorKind::InvalidArgument, {"lack img_emb.emb_pos"});
  auto t2v = official("wan21/dit_t2v.safetensors");
  expect_error([&] { resolve_dit_config(parse_dit_config(R"({"model_type": "s2v"})", "cfg.json"), *t2v); },
               ErrorKind::Unsupported, {"model_type \"s2v\" is not supported"});
  expect_error([&] { resolve_dit_config(parse_dit_config(R"({"window_size": [8, 8]})", "cfg.json"), *t2v); },
               ErrorKind::Unsupported, {"window_size [8, 8]"});
  expect_error([&] { resolve_dit_config(parse_dit_config(R"({"num_heads": 3})", "cfg.json"), *t2v); },
               ErrorKind::InvalidArgument, {"num_heads 3"});
}

TEST(DitConfig, ConfigFileThroughLoad) {
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/bad.json") << R"({"dim": 256, "unknown_thing": 1})";
  expect_error([&] { DitModel::load(fixture("wan21/dit_t2v.safetensors"), dir + "/bad.json"); }, ErrorKind::InvalidArgument,
               {"bad.json", "unknown config field \"unknown_thing\""});
  std::ofstream(dir + "/good.json") << R"({"dim": 256, "num_heads": 2, "model_type": "t2v", "eps": 1e-6})";
  DitModel m = DitModel::load(fixture("wan21/dit_t2v.safetensors"), dir + "/good.json");
  EXPECT_EQ(m.config().num_heads, 2);
  expect_error([&] { DitModel::load(fixture("wan21/dit_t2v.safetensors"), dir + "/missing.json"); }, ErrorKind::NotFound,
               {"missing.json"});
  // A file that is not a DiT.
  expect_error([&] { DitModel::load(fixture("wan21/vae.safetensors")); }, ErrorKind::InvalidArgument,
               {"Wan2.1 VAE", "not a Wan DiT"});
}

// A diffusers transformer/config.json is read under its own field names.
TEST(DitConfig, DiffusersConfig) {
  DitConfigFields f = parse_dit_config(R"({"_class_name": "WanTransformer3DModel", "_diffusers_version": "0.33.0",
      "added_kv_proj_dim": 256, "attention_head_dim": 128, "cross_attn_norm": true, "eps": 1e-06, "ffn_dim": 384,
      "freq_dim": 256, "image_dim": 1280, "in_channels": 36, "num_attention_heads": 2, "num_layers": 2,
      "out_channels": 16, "patch_size": [1, 2, 2], "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 1024,
      "text_dim": 64})",
                                       "transformer/config.json");
  EXPECT_EQ(*f.dim, 256);
  EXPECT_EQ(*f.in_dim, 36);
  EXPECT_EQ(*f.model_type, "i2v");
  DitConfig c = resolve_dit_config(f, *official("wan21/dit_i2v.diffusers.safetensors"));
  EXPECT_EQ(c.num_heads, 2);
  EXPECT_TRUE(c.clip_branch);
  expect_error([] { parse_dit_config(R"({"_class_name": "WanTransformer3DModel", "foo": 1})", "t.json"); },
               ErrorKind::InvalidArgument, {"unknown field \"foo\"", "diffusers"});
}

// Every tensor of the file must be used: an extra one means another variant or a wrong config.
TEST(DitConfig, UnexpectedTensorIsAnError) {
  io::SafeTensors st = io::SafeTensors::open(fixture("wan21/dit_t2v.safetensors"));
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const auto& t : st.tensors()) ts.emplace_back(t.name, st.get(t.name));
  ts.emplace_back("blocks.1.self_attn.alpha", Tensor::zeros({1}, DType::F32));
  const std::string path = test::temp_dir() + "/extra.safetensors";
  io::write_safetensors(path, ts);
  expect_error([&] { DitModel::load(path); }, ErrorKind::BadFile, {"extra.safetensors", "blocks.1.self_attn.alpha"});
  // A missing block tensor names the tensor.
  ts.pop_back();
  ts.erase(std::remove_if(ts.begin(), ts.end(), [](const auto& p) { return p.first == "blocks.1.ffn.2.bias"; }), ts.end());
  io::write_safetensors(path, ts);
  expect_error([&] { DitModel::load(path); }, ErrorKind::NotFound, {"blocks.1.ffn.2.bias", "missing"});
  // ComfyUI's scaled-fp8 files carry per-tensor scales: refused by name, not misread.
  ts = {};
  for (const auto& t : st.tensors()) ts.emplace_back(t.name, st.get(t.name));
  ts.emplace_back("blocks.0.self_attn.q.scale_weight", Tensor::zeros({1}, DType::F32));
  io::write_safetensors(path, ts);
  expect_error([&] { DitModel::load(path); }, ErrorKind::Unsupported, {"scaled fp8", "blocks.0.self_attn.q.scale_weight"});
}

TEST(DitKeys, DiffusersMap) {
  EXPECT_EQ(dit_name_from_diffusers("blocks.3.attn2.norm_added_k.weight"), "blocks.3.cross_attn.norm_k_img.weight");
  EXPECT_EQ(dit_name_from_diffusers("blocks.12.norm2.bias"), "blocks.12.norm3.bias");
  EXPECT_EQ(dit_name_from_diffusers("blocks.0.ffn.net.2.weight"), "blocks.0.ffn.2.weight");
  EXPECT_EQ(dit_name_from_diffusers("blocks.0.ffn.net.0.proj.bias"), "blocks.0.ffn.0.bias");
  EXPECT_EQ(dit_name_from_diffusers("blocks.0.attn1.to_out.0.weight"), "blocks.0.self_attn.o.weight");
  EXPECT_EQ(dit_name_from_diffusers("blocks.0.scale_shift_table"), "blocks.0.modulation");
  EXPECT_EQ(dit_name_from_diffusers("scale_shift_table"), "head.modulation");
  EXPECT_EQ(dit_name_from_diffusers("proj_out.weight"), "head.head.weight");
  EXPECT_EQ(dit_name_from_diffusers("condition_embedder.time_proj.bias"), "time_projection.1.bias");
  EXPECT_EQ(dit_name_from_diffusers("condition_embedder.image_embedder.ff.net.2.weight"), "img_emb.proj.3.weight");
  EXPECT_EQ(dit_name_from_diffusers("condition_embedder.image_embedder.pos_embed"), "img_emb.emb_pos");
  // Unknown names pass through, so the loader can report them.
  EXPECT_EQ(dit_name_from_diffusers("blocks.0.attn1.to_q.lora_A.weight"), "blocks.0.attn1.to_q.lora_A.weight");
  EXPECT_EQ(dit_name_from_diffusers("something_else"), "something_else");
}

// The mapped diffusers file holds exactly the official file's tensors.
TEST(DitKeys, DiffusersFileMapsOntoOfficialNames) {
  for (const char* name : {"dit_t2v", "dit_i2v"}) {
    auto off = io::open_weights(fixture(std::string("wan21/") + name + ".safetensors"));
    auto dif = official(std::string("wan21/") + name + ".diffusers.safetensors");
    EXPECT_EQ(off->names(), dif->names()) << name;
    for (const auto& n : off->names()) EXPECT_EQ(off->meta(n).shape, dif->meta(n).shape) << n;
  }
}

TEST(DitDescribe, InfoShowsTheInferredConfig) {
  auto w = io::open_weights(fixture("wan21/dit_i2v.diffusers.safetensors"));
  std::string all;
  for (const auto& l : describe(*w)) all += l + "\n";
  EXPECT_NE(all.find("diffusers names"), std::string::npos) << all;
  EXPECT_NE(all.find("model_type i2v, dim 256, ffn_dim 384, num_heads 2"), std::string::npos) << all;
  EXPECT_NE(all.find("CLIP image branch"), std::string::npos) << all;
}

}  // namespace
}  // namespace x2v::models::wan
