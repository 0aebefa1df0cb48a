// The T5 encoder against the official Wan2.1 code's outputs (../shared/fixtures/wan21/t5.*), from
// the safetensors and the .pth weights, plus the bucket function, config inference and the
// Hugging Face names.
#include <cmath>
#include <cstdio>

#include "io/safetensors.h"
#include "io/weights.h"
#include "models/wan/encoder_keys.h"
#include "models/wan/t5.h"
#include "testutil.h"

using namespace x2v;
using namespace x2v::models::wan;

namespace {

struct T5Fixture {
  io::SafeTensors io = io::SafeTensors::open(test::fixture("wan21/t5.io.safetensors"));
  Tensor ids = io.get("ids").clone(), mask = io.get("mask").clone();
};

void check_fixture(const std::string& weights) {
  T5Fixture f;
  T5Encoder enc = T5Encoder::load(test::fixture(weights));
  EXPECT_EQ(enc.config().dim, 64);
  EXPECT_EQ(enc.config().num_heads, 4);
  EXPECT_EQ(enc.config().num_layers, 2);
  EXPECT_EQ(enc.config().vocab, 512);
  EXPECT_FALSE(enc.config().shared_pos);
  Tensor out = enc.forward(f.ids, f.mask);
  std::printf("%s: rel L2 out %.3g, trimmed %.3g\n", weights.c_str(), test::rel_l2(out.to_vector(), f.io.get("out").to_vector()),
              test::rel_l2(T5Encoder::trim(out, f.mask).to_vector(), f.io.get("out_trimmed").to_vector()));
  test::expect_close(out, f.io.get("out"), 1e-4, weights + " out");
  test::expect_close(T5Encoder::trim(out, f.mask), f.io.get("out_trimmed"), 1e-4, weights + " out_trimmed");
}

}  // namespace

TEST(T5, MatchesReferenceFromSafetensors) { check_fixture("wan21/t5.safetensors"); }
TEST(T5, MatchesReferenceFromPth) { check_fixture("wan21/t5.bf16.pth"); }

TEST(T5, BucketsFollowTheSpec) {
  // Exact region |rel| < 8, then log-spaced up to bucket 15; keys after the query use 16..31.
  EXPECT_EQ(T5Encoder::bucket(0, 32, 128), 0);
  EXPECT_EQ(T5Encoder::bucket(-7, 32, 128), 7);
  EXPECT_EQ(T5Encoder::bucket(7, 32, 128), 23);
  EXPECT_EQ(T5Encoder::bucket(-8, 32, 128), 8);
  EXPECT_EQ(T5Encoder::bucket(-15, 32, 128), 9);  // 8 + trunc(log(15/8)/log(16)·8) = 8 + 1
  EXPECT_EQ(T5Encoder::bucket(-16, 32, 128), 10);  // exactly 2 after the f32 log
  EXPECT_EQ(T5Encoder::bucket(-32, 32, 128), 12);
  EXPECT_EQ(T5Encoder::bucket(-127, 32, 128), 15);
  EXPECT_EQ(T5Encoder::bucket(-5000, 32, 128), 15);
  EXPECT_EQ(T5Encoder::bucket(5000, 32, 128), 31);
  // Against the formula in double away from the integer boundaries.
  for (int64_t r = 8; r < 600; ++r) {
    if (r == 16 || r == 32 || r == 64 || r == 128) continue;
    const int64_t want = std::min<int64_t>(15, 8 + static_cast<int64_t>(std::log(r / 8.0) / std::log(16.0) * 8));
    EXPECT_EQ(T5Encoder::bucket(-r, 32, 128), want) << r;
    EXPECT_EQ(T5Encoder::bucket(r, 32, 128), 16 + want) << r;
  }
}

TEST(T5, PositionBiasLayout) {
  std::shared_ptr<io::WeightStore> w = io::open_weights(test::fixture("wan21/t5.safetensors"));
  T5Encoder enc(*w, infer_t5_config(*w));
  Tensor table = w->load("blocks.1.pos_embedding.embedding.weight").to(DType::F32);  // [32, 4]
  Tensor bias = enc.position_bias(table, 40);
  ASSERT_EQ(bias.shape(), (Shape{4, 40, 40}));
  auto t = table.to_vector(), b = bias.to_vector();
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t i = 0; i < 40; ++i)
      for (int64_t j = 0; j < 40; ++j)
        ASSERT_EQ(b[static_cast<size_t>((h * 40 + i) * 40 + j)],
                  t[static_cast<size_t>(T5Encoder::bucket(j - i, 32, 128) * 4 + h)]);
}

TEST(T5, PaddingDoesNotChangeRealTokens) {
  // Pad keys are masked, so the real rows of a 160-token run equal a run on the 150 real tokens.
  T5Fixture f;
  T5Encoder enc = T5Encoder::load(test::fixture("wan21/t5.safetensors"));
  Tensor real = enc.forward(f.ids.slice(0, 150).clone(), f.mask.slice(0, 150).clone());
  test::expect_close(real, f.io.get("out_trimmed"), 1e-4, "unpadded run");
}

TEST(T5, ConfigFromJsonMustAgreeWithShapes) {
  auto w = io::open_weights(test::fixture("wan21/t5.safetensors"));
  T5Config c = infer_t5_config(*w, EncoderConfigJson::parse(
      R"({"dim": 64, "dim_attn": 64, "dim_ffn": 160, "num_buckets": 32, "num_heads": 4, "num_layers": 2,
          "shared_pos": false, "vocab": 512})", "meta"));
  EXPECT_EQ(c.dim_ffn, 160);
  EXPECT_THROW(infer_t5_config(*w, EncoderConfigJson::parse(R"({"num_heads": 8})", "cfg")), Error);
  EXPECT_THROW(infer_t5_config(*w, EncoderConfigJson::parse(R"({"dim": "64"})", "cfg")), Error);
  EXPECT_THROW(infer_t5_config(*w, EncoderConfigJson::parse(R"({"dimm": 64})", "cfg")), Error);
  EXPECT_THROW(infer_t5_config(*w, EncoderConfigJson::parse(R"({"shared_pos": true})", "cfg")), Error);
  // Defaults are umT5-XXL's.
  T5Config d;
  EXPECT_EQ(d.vocab, 256384);
  EXPECT_EQ(d.dim, 4096);
  EXPECT_EQ(d.num_heads, 64);
  EXPECT_EQ(d.num_layers, 24);
  EXPECT_EQ(d.dim_ffn, 10240);
}

TEST(T5, RejectsBadIds) {
  T5Encoder enc = T5Encoder::load(test::fixture("wan21/t5.safetensors"));
  Tensor ids = Tensor::zeros({4}, DType::I64), mask = Tensor::zeros({4}, DType::I64);
  ids.data<int64_t>()[2] = 512;
  EXPECT_THROW(enc.forward(ids, mask), Error);
  EXPECT_THROW(enc.forward(Tensor::zeros({4}, DType::F32), mask), Error);
  EXPECT_THROW(enc.forward(Tensor::zeros({4}, DType::I64), Tensor::zeros({5}, DType::I64)), Error);
}

TEST(T5, HuggingFaceNamesGiveTheSameOutput) {
  // Write the fixture weights under UMT5EncoderModel names (with a ComfyUI-style prefix) and run.
  auto w = io::open_weights(test::fixture("wan21/t5.safetensors"));
  std::vector<std::pair<std::string, Tensor>> hf;
  const std::string p = "text_encoders.umt5.";
  hf.emplace_back(p + "shared.weight", w->load("token_embedding.weight"));
  hf.emplace_back(p + "encoder.final_layer_norm.weight", w->load("norm.weight"));
  for (int i = 0; i < 2; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".", e = p + "encoder.block." + std::to_string(i) + ".layer.";
    for (const char* x : {"q", "k", "v", "o"})
      hf.emplace_back(e + "0.SelfAttention." + x + ".weight", w->load(b + "attn." + x + ".weight"));
    hf.emplace_back(e + "0.SelfAttention.relative_attention_bias.weight", w->load(b + "pos_embedding.embedding.weight"));
    hf.emplace_back(e + "0.layer_norm.weight", w->load(b + "norm1.weight"));
    hf.emplace_back(e + "1.DenseReluDense.wi_0.weight", w->load(b + "ffn.gate.0.weight"));
    hf.emplace_back(e + "1.DenseReluDense.wi_1.weight", w->load(b + "ffn.fc1.weight"));
    hf.emplace_back(e + "1.DenseReluDense.wo.weight", w->load(b + "ffn.fc2.weight"));
    hf.emplace_back(e + "1.layer_norm.weight", w->load(b + "norm2.weight"));
  }
  hf.emplace_back("spiece_model", Tensor::zeros({8}, DType::U8));  // ComfyUI embeds the tokenizer
  const std::string path = test::temp_dir() + "/umt5_hf.safetensors";
  io::write_safetensors(path, hf);
  T5Fixture f;
  T5Encoder enc = T5Encoder::load(path);
  test::expect_close(enc.forward(f.ids, f.mask), f.io.get("out"), 1e-4, "HF names");
  EXPECT_THROW(T5Encoder::load(test::fixture("wan21/clip.safetensors")), Error);
}
