// The demo model: its tensor lists equal the fixture checkpoints' (written by the reference
// modules) at the fixture configurations, its tokenizer follows umT5's conventions, and the folder
// it writes loads through the normal model-folder path.
#include <filesystem>
#include <map>

#include "io/weights.h"
#include "models/wan/t5.h"
#include "models/wan/tokenizer.h"
#include "pipeline/demo.h"
#include "pipeline/model_dir.h"
#include "testutil.h"

namespace x2v::pipeline {
namespace {

std::map<std::string, Shape> as_map(const TensorShapes& t) {
  std::map<std::string, Shape> m;
  for (const auto& [n, s] : t) EXPECT_TRUE(m.emplace(n, s).second) << "duplicate " << n;
  return m;
}

std::map<std::string, Shape> file_shapes(const std::string& fixture) {
  auto w = io::open_weights(test::fixture("wan21/" + fixture));
  std::map<std::string, Shape> m;
  for (const auto& n : w->names()) m[n] = w->meta(n).shape;
  return m;
}

void expect_same(const std::map<std::string, Shape>& got, const std::map<std::string, Shape>& ref) {
  EXPECT_EQ(got.size(), ref.size());
  for (const auto& [n, s] : ref) {
    auto it = got.find(n);
    if (it == got.end()) {
      ADD_FAILURE() << "missing " << n;
      continue;
    }
    EXPECT_EQ(it->second, s) << n;
  }
  for (const auto& [n, s] : got) EXPECT_TRUE(ref.count(n)) << "extra " << n;
}

TEST(DemoModel, DitTensorsAsTheReference) {
  DitShapeConfig c;  // the fixtures' tiny config: dim 256, ffn 384, text_dim 64, 2 layers
  c.ffn_dim = 384;
  expect_same(as_map(wan_dit_shapes(c)), file_shapes("dit_t2v.safetensors"));
  c.i2v = true;
  c.in_dim = 36;
  expect_same(as_map(wan_dit_shapes(c)), file_shapes("dit_i2v.safetensors"));
}

TEST(DemoModel, VaeTensorsAsTheReference) {
  expect_same(as_map(wan_vae_shapes({})), file_shapes("vae.safetensors"));
}

TEST(DemoModel, T5TensorsAsTheReference) {
  expect_same(as_map(wan_t5_shapes({})), file_shapes("t5.safetensors"));
}

TEST(DemoModel, ClipTensorsAsTheReference) {
  expect_same(as_map(wan_clip_shapes({})), file_shapes("clip.safetensors"));
}

TEST(DemoModel, InitScales) {
  Tensor g = demo_init("decoder.head.0.gamma", {64, 1, 1, 1}, 1);
  for (float v : g.to_vector()) EXPECT_NEAR(v, 1.f, 0.6f);
  Tensor w = demo_init("blocks.0.ffn.0.weight", {512, 256}, 2);
  double ss = 0;
  for (float v : w.to_vector()) ss += double(v) * v;
  EXPECT_NEAR(ss / w.numel(), 1.0 / 256, 0.1 / 256);  // variance 1/fan_in
  EXPECT_NE(demo_init("a.weight", {4, 4}, 1).to_vector(), demo_init("a.weight", {4, 4}, 2).to_vector());
}

TEST(DemoModel, TokenizerFollowsUmt5Conventions) {
  const std::string proto = train_demo_tokenizer();
  auto tok = models::wan::Tokenizer::from_model_bytes(proto, "demo");
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_GT(tok.vocab_size(), 100);
  auto t = tok.encode("a red fox running through fresh snow", 32);
  ASSERT_EQ(t.ids.size(), 32u);
  ASSERT_GT(t.length, 2);
  EXPECT_EQ(t.ids[t.length - 1], 1);  // </s>
  for (int64_t i = t.length; i < 32; ++i) EXPECT_EQ(t.ids[i], 0);
  // Words of the training captions are pieces, not unknowns (id 2).
  for (int64_t i = 0; i < t.length; ++i) EXPECT_NE(t.ids[i], 2);
}

TEST(DemoModel, FolderLoadsThroughTheModelPath) {
  const std::string dir = test::temp_dir();
  DemoModelInfo info = write_demo_model(dir);
  ModelFiles f = find_model_files({.model_dir = dir, .dit = {}, .dit_config = {}, .t5 = {}, .tokenizer = {}, .clip = {},
                                   .clip_config = {}, .vae = {}},
                                  {});
  EXPECT_EQ(f.layout, "Wan-AI");
  EXPECT_FALSE(f.dit_config.empty());
  auto tok = models::wan::Tokenizer::open(f.tokenizer);
  EXPECT_EQ(tok.vocab_size(), info.vocab);
  auto t5 = models::wan::T5Encoder::load(f.t5);
  EXPECT_EQ(t5.config().vocab, info.vocab);
  Tensor ctx = t5.encode(tok, kDemoPrompt);
  EXPECT_EQ(ctx.size(1), info.dit.text_dim);
  for (float v : ctx.to_vector()) ASSERT_TRUE(std::isfinite(v));
  // Deterministic: the same seed writes the same weights.
  const std::string dir2 = test::temp_dir();
  write_demo_model(dir2);
  auto a = io::open_weights(dir + "/" + kDitFile), b = io::open_weights(dir2 + "/" + kDitFile);
  EXPECT_EQ(a->load("blocks.1.ffn.2.weight").to_vector(), b->load("blocks.1.ffn.2.weight").to_vector());
}

}  // namespace
}  // namespace x2v::pipeline
