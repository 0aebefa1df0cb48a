// The Wan DiT against the golden fixtures of the official code: every case and timestep,
// intermediates included, from every checkpoint layout the loader reads.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "models/wan/dit.h"
#include "ops/layout.h"
#include "testutil.h"

namespace x2v::models::wan {
namespace {

using test::fixture;

constexpr double kTol = 1e-4;

nlohmann::json meta(const std::string& set) {
  std::ifstream in(fixture(set + "/meta.json"));
  return nlohmann::json::parse(in);
}

// Runs every case and timestep of `io_file` (wan21/dit_*.io.safetensors) and compares the output
// and, at t0, every intermediate the fixture holds. Returns the number of comparisons made.
int check_io(const DitModel& m, const std::string& io_file, const std::string& meta_key) {
  io::SafeTensors io = io::SafeTensors::open(fixture("wan21/" + io_file));
  nlohmann::json mj = meta("wan21")[meta_key];
  int compared = 0;
  double worst = 0;
  auto compare = [&](const Tensor& got, const std::string& ref_name) {
    test::expect_close(got, io.get(ref_name), kTol, io_file + " " + ref_name);
    worst = std::max(worst, test::rel_l2(got.to_vector(), io.get(ref_name).to_vector()));
    ++compared;
  };
  for (int ci = 0; ci < 4; ++ci) {
    const std::string cs = "case" + std::to_string(ci);
    if (!io.has(cs + ".x")) continue;
    DitInputs in;
    in.x = io.get(cs + ".x");
    in.context = io.get(cs + ".context");
    if (io.has(cs + ".clip_fea")) in.clip_fea = io.get(cs + ".clip_fea");
    if (io.has(cs + ".y")) in.y = io.get(cs + ".y");
    DitContext ctx;
    std::map<std::string, Tensor> seen;
    // The residual stream is updated in place, so what the observer sees must be copied.
    DitObserver obs = [&](std::string_view name, const Tensor& v) { seen[std::string(name)] = v.clone(); };
    ctx = m.embed_context(in.context, in.clip_fea, obs);
    for (int k = 0; k < 3; ++k) {
      const std::string tk = cs + ".t" + std::to_string(k);
      const float tval = mj.at(tk + ".timestep").get<float>();
      Tensor out = m.forward(in.x, in.y, Tensor::scalar_f32(tval), ctx, obs);
      compare(out, tk + ".out");
      if (k != 0) continue;
      for (const auto& t : io.tensors()) {
        if (t.name.rfind(tk + ".", 0) != 0 || t.name == tk + ".out") continue;
        const std::string what = t.name.substr(tk.size() + 1);
        if (!seen.count(what)) {
          ADD_FAILURE() << "the forward did not report " << what;
          continue;
        }
        compare(seen[what], t.name);
      }
    }
  }
  std::printf("[ dit      ] %s vs %s: %d comparisons, worst relative L2 error %.3g\n", m.config().model_type.c_str(),
              io_file.c_str(), compared, worst);
  return compared;
}

// The official bf16 file, the fp32 file and the diffusers-named file hold the same values.
TEST(Dit, T2VOfficialBf16EveryCaseAndTimestep) {
  DitModel m = DitModel::load(fixture("wan21/dit_t2v.safetensors"));
  EXPECT_EQ(m.config().model_type, "t2v");
  // 2 cases x 3 timesteps, + 6 intermediates (2 blocks) per case at t0.
  EXPECT_EQ(check_io(m, "dit_t2v.io.safetensors", "dit_t2v"), 2 * 3 + 2 * 6);
}

TEST(Dit, T2VOfficialFp32) {
  DitModel m = DitModel::load(fixture("wan21/dit_t2v.fp32.safetensors"));
  EXPECT_EQ(check_io(m, "dit_t2v.io.safetensors", "dit_t2v"), 18);
}

TEST(Dit, T2VDiffusersNames) {
  DitModel m = DitModel::load(fixture("wan21/dit_t2v.diffusers.safetensors"));
  EXPECT_EQ(check_io(m, "dit_t2v.io.safetensors", "dit_t2v"), 18);
}

TEST(Dit, I2VOfficial) {
  DitModel m = DitModel::load(fixture("wan21/dit_i2v.safetensors"));
  EXPECT_EQ(m.config().model_type, "i2v");
  EXPECT_TRUE(m.config().clip_branch);
  EXPECT_EQ(check_io(m, "dit_i2v.io.safetensors", "dit_i2v"), 3 + 6);
}

// embed_context computes every block's cross-attention keys and values once per context; a context
// with the embeddings alone has the forward compute them. Both give the same output, and the cached
// ones are what the forward would compute (I2V: text and image branches).
TEST(Dit, CrossAttentionKeysAndValuesFromTheContext) {
  DitModel m = DitModel::load(fixture("wan21/dit_i2v.safetensors"));
  io::SafeTensors io = io::SafeTensors::open(fixture("wan21/dit_i2v.io.safetensors"));
  const DitContext full = m.embed_context(io.get("case0.context"), io.get("case0.clip_fea"));
  const size_t n = m.weights().blocks.size();
  ASSERT_EQ(full.text_k.size(), n);
  ASSERT_EQ(full.text_v.size(), n);
  ASSERT_EQ(full.image_k.size(), n);
  ASSERT_EQ(full.image_v.size(), n);
  const DitConfig& c = m.config();
  EXPECT_EQ(full.text_k[0].shape(), (std::vector<int64_t>{c.text_len, c.num_heads, c.head_dim()}));
  EXPECT_EQ(full.image_v[0].shape(), (std::vector<int64_t>{c.clip_tokens(), c.num_heads, c.head_dim()}));
  DitContext bare;
  bare.text = full.text;
  bare.image = full.image;
  const Tensor x = io.get("case0.x"), y = io.get("case0.y"), t = Tensor::scalar_f32(500.f);
  const std::vector<float> a = m.forward(x, y, t, full).to_vector(), b = m.forward(x, y, t, bare).to_vector();
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a, b);
}

TEST(Dit, I2VDiffusersNames) {
  DitModel m = DitModel::load(fixture("wan21/dit_i2v.diffusers.safetensors"));
  EXPECT_TRUE(m.config().clip_branch);
  EXPECT_EQ(check_io(m, "dit_i2v.io.safetensors", "dit_i2v"), 9);
}

// Writes the tensors of `src` to `dst` under new names, in `dtype`.
void rewrite(const std::string& src, const std::string& dst, const std::function<std::string(const std::string&)>& name,
             DType dtype) {
  io::SafeTensors st = io::SafeTensors::open(src);
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const auto& t : st.tensors()) ts.emplace_back(name(t.name), st.get(t.name).to(dtype));
  io::write_safetensors(dst, ts);
}

// The load option a device backend uses (bf16 matmul weights) also works on the CPU; the fixture's
// weights are bf16 values, so nothing changes.
TEST(Dit, Bf16MatmulWeightsOption) {
  DitLoadOptions opt;
  opt.matmul_dtype = DType::BF16;
  DitModel m = DitModel::load(fixture("wan21/dit_i2v.safetensors"), "", opt);
  EXPECT_EQ(m.weights().blocks[0].self_attn.q.weight.dtype(), DType::BF16);
  EXPECT_EQ(m.weights().blocks[0].modulation.dtype(), DType::F32);
  EXPECT_EQ(m.weights().time_embedding_0.weight.dtype(), DType::F32);
  EXPECT_EQ(check_io(m, "dit_i2v.io.safetensors", "dit_i2v"), 9);
}

// ComfyUI's repackaged single files: a name prefix, and fp16 like wan2.1_t2v_1.3B_fp16.safetensors.
TEST(Dit, ComfyUiPrefixedFp16SingleFile) {
  const std::string path = test::temp_dir() + "/wan2.1_t2v_comfy_fp16.safetensors";
  rewrite(fixture("wan21/dit_t2v.safetensors"), path, [](const std::string& n) { return "model.diffusion_model." + n; },
          DType::F16);
  DitModel m = DitModel::load(path);
  EXPECT_EQ(io::open_weights(path)->meta("model.diffusion_model.head.modulation").dtype, DType::F16);
  EXPECT_EQ(check_io(m, "dit_t2v.io.safetensors", "dit_t2v"), 18);
}

TEST(Dit, ShardedIndex) {
  const std::string dir = test::temp_dir();
  io::SafeTensors st = io::SafeTensors::open(fixture("wan21/dit_i2v.safetensors"));
  std::vector<std::pair<std::string, Tensor>> shard[2];
  nlohmann::json index;
  index["metadata"]["total_size"] = 0;
  size_t i = 0;
  for (const auto& t : st.tensors()) {
    const int s = i++ < st.tensors().size() / 2 ? 0 : 1;
    const std::string file = "diffusion_pytorch_model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
    shard[s].emplace_back(t.name, st.get(t.name));
    index["weight_map"][t.name] = file;
  }
  ASSERT_FALSE(shard[0].empty());
  ASSERT_FALSE(shard[1].empty());
  io::write_safetensors(dir + "/diffusion_pytorch_model-00001-of-00002.safetensors", shard[0]);
  io::write_safetensors(dir + "/diffusion_pytorch_model-00002-of-00002.safetensors", shard[1]);
  std::ofstream(dir + "/diffusion_pytorch_model.safetensors.index.json") << index.dump(2);
  // The official config.json beside the shards is read (and checked) too.
  std::ofstream(dir + "/config.json") << R"({"_class_name": "WanModel", "_diffusers_version": "0.30.0", "dim": 256,
      "eps": 1e-06, "ffn_dim": 384, "freq_dim": 256, "in_dim": 36, "model_type": "i2v", "num_heads": 2,
      "num_layers": 2, "out_dim": 16, "text_len": 512})";
  DitModel m = DitModel::load(dir + "/diffusion_pytorch_model.safetensors.index.json");
  EXPECT_EQ(check_io(m, "dit_i2v.io.safetensors", "dit_i2v"), 9);
}

// The inferred configuration is the constructor configuration the fixtures were made with.
TEST(Dit, InferredConfigMatchesReference) {
  for (const char* name : {"dit_t2v", "dit_i2v"}) {
    nlohmann::json want = meta("wan21")[name]["config"];
    DitModel m = DitModel::load(fixture(std::string("wan21/") + name + ".safetensors"));
    const DitConfig& c = m.config();
    EXPECT_EQ(c.model_type, want["model_type"].get<std::string>()) << name;
    EXPECT_EQ(c.dim, want["dim"].get<int64_t>()) << name;
    EXPECT_EQ(c.ffn_dim, want["ffn_dim"].get<int64_t>()) << name;
    EXPECT_EQ(c.in_dim, want["in_dim"].get<int64_t>()) << name;
    EXPECT_EQ(c.out_dim, want["out_dim"].get<int64_t>()) << name;
    EXPECT_EQ(c.num_heads, want["num_heads"].get<int64_t>()) << name;
    EXPECT_EQ(c.num_layers, want["num_layers"].get<int64_t>()) << name;
    EXPECT_EQ(c.text_dim, want["text_dim"].get<int64_t>()) << name;
    EXPECT_EQ(c.freq_dim, want["freq_dim"].get<int64_t>()) << name;
    EXPECT_EQ(c.text_len, want["text_len"].get<int64_t>()) << name;
    EXPECT_EQ(c.eps, want["eps"].get<double>()) << name;
    EXPECT_EQ(c.qk_norm, want["qk_norm"].get<bool>()) << name;
    EXPECT_EQ(c.cross_attn_norm, want["cross_attn_norm"].get<bool>()) << name;
    EXPECT_EQ(std::vector<int64_t>(c.patch_size.begin(), c.patch_size.end()), want["patch_size"].get<std::vector<int64_t>>());
  }
}

// FLF2V has no fixture; check it against I2V: with a zero emb_pos and the same 257 CLIP tokens for the
// first and the last frame, every image key appears twice, which leaves softmax attention unchanged,
// so the output must be the I2V fixture's.
TEST(Dit, Flf2vReducesToI2vWithRepeatedFrame) {
  io::SafeTensors st = io::SafeTensors::open(fixture("wan21/dit_i2v.safetensors"));
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const auto& t : st.tensors()) ts.emplace_back(t.name, st.get(t.name));
  ts.emplace_back("img_emb.emb_pos", Tensor::zeros({1, 514, 1280}, DType::F32));
  const std::string path = test::temp_dir() + "/flf2v.safetensors";
  io::write_safetensors(path, ts);
  DitModel m = DitModel::load(path);
  EXPECT_EQ(m.config().model_type, "flf2v");
  EXPECT_EQ(m.config().clip_tokens(), 514);
  io::SafeTensors io = io::SafeTensors::open(fixture("wan21/dit_i2v.io.safetensors"));
  DitInputs in;
  in.x = io.get("case0.x");
  in.y = io.get("case0.y");
  in.context = io.get("case0.context");
  in.clip_fea = ops::concat({io.get("case0.clip_fea"), io.get("case0.clip_fea")}, 0).reshape({2, 257, 1280});
  in.t = Tensor::scalar_f32(meta("wan21")["dit_i2v"]["case0.t1.timestep"].get<float>());
  test::expect_close(m.forward(in), io.get("case0.t1.out"), kTol, "flf2v with a repeated frame");
  // A single frame's features are refused.
  in.clip_fea = io.get("case0.clip_fea");
  EXPECT_THROW(m.forward(in), Error);
}

// Wan2.2 TI2V-5B layout: one timestep for all tokens, and one per token (first latent frame at 0).
TEST(Dit, Wan22PerTokenTimesteps) {
  DitModel m = DitModel::load(fixture("wan22/dit_ti2v.safetensors"));
  EXPECT_EQ(m.config().model_type, "ti2v");
  EXPECT_FALSE(m.config().clip_branch);
  io::SafeTensors io = io::SafeTensors::open(fixture("wan22/dit_ti2v.io.safetensors"));
  const float t = meta("wan22")["dit_ti2v"]["timestep"].get<float>();
  DitInputs in;
  in.x = io.get("x");
  in.context = io.get("context");
  in.t = Tensor::from_f32({t}, {1});
  test::expect_close(m.forward(in), io.get("out_scalar_t"), kTol, "ti2v out_scalar_t");
  in.t = io.get("t_per_token");
  Tensor e0;
  Tensor out = m.forward(in, [&](std::string_view n, const Tensor& v) {
    if (n == "e0") e0 = v.clone();
  });
  test::expect_close(out, io.get("out_token_t"), kTol, "ti2v out_token_t");
  std::printf("[ dit      ] ti2v per-token t: relative L2 error %.3g\n",
              test::rel_l2(out.to_vector(), io.get("out_token_t").to_vector()));
  ASSERT_TRUE(e0.defined());
  EXPECT_EQ(e0.shape(), (Shape{12, 6, 256}));
  // The two runs differ only on the first frame's tokens; make sure the per-token path was taken.
  EXPECT_GT(test::rel_l2(io.get("out_token_t").to_vector(), io.get("out_scalar_t").to_vector()), 1e-3);
}

// Patchify, patch embedding, head and unpatchify for a patch that is not 1x2x2, against a direct
// Conv3d and a direct placement of the head's outputs: a model without blocks whose time MLP
// outputs e = 0 computes exactly head(patch_embedding(x)).
TEST(Dit, PatchLayoutAgainstDirectConv) {
  const int64_t D = 128, C = 4, Ct = 8, pt = 2, ph = 1, pw = 2, F = 4, H = 3, W = 6, P = pt * ph * pw;
  uint64_t seed = 100;
  auto rnd = [&](const Shape& s) { return test::random_tensor(s, seed++, -0.5f, 0.5f); };
  const std::vector<std::pair<std::string, Tensor>> ts = {
      {"patch_embedding.weight", rnd({D, C, pt, ph, pw})},   {"patch_embedding.bias", rnd({D})},
      {"text_embedding.0.weight", rnd({D, Ct})},             {"text_embedding.0.bias", rnd({D})},
      {"text_embedding.2.weight", rnd({D, D})},              {"text_embedding.2.bias", rnd({D})},
      {"time_embedding.0.weight", rnd({D, 256})},            {"time_embedding.0.bias", rnd({D})},
      {"time_embedding.2.weight", Tensor::zeros({D, D}, DType::F32)},
      {"time_embedding.2.bias", Tensor::zeros({D}, DType::F32)},
      {"time_projection.1.weight", rnd({6 * D, D})},         {"time_projection.1.bias", rnd({6 * D})},
      {"head.modulation", rnd({1, 2, D})},                   {"head.head.weight", rnd({P * C, D})},
      {"head.head.bias", rnd({P * C})}};
  const std::string path = test::temp_dir() + "/patch.safetensors";
  io::write_safetensors(path, ts);
  DitModel m = DitModel::load(path);
  ASSERT_EQ(m.config().patch_size, (std::array<int64_t, 3>{pt, ph, pw}));
  ASSERT_EQ(m.config().num_layers, 0);
  DitInputs in;
  in.x = rnd({C, F, H, W});
  in.context = rnd({5, Ct});
  in.t = Tensor::scalar_f32(500.f);
  Tensor out = m.forward(in);

  auto at = [](const Tensor& t, const Shape& idx) {
    int64_t o = 0;
    for (size_t i = 0; i < idx.size(); ++i) o = o * t.size(static_cast<int>(i)) + idx[i];
    return static_cast<double>(t.data<float>()[o]);
  };
  const Tensor& wp = ts[0].second;
  const Tensor& bp = ts[1].second;
  const Tensor& mod = ts[12].second;
  const Tensor& wh = ts[13].second;
  const Tensor& bh = ts[14].second;
  std::vector<float> ref(static_cast<size_t>(C * F * H * W), std::nanf(""));
  for (int64_t f = 0; f < F / pt; ++f)
    for (int64_t h = 0; h < H / ph; ++h)
      for (int64_t w = 0; w < W / pw; ++w) {
        std::vector<double> a(static_cast<size_t>(D));
        for (int64_t d = 0; d < D; ++d) {
          double s = at(bp, {d});
          for (int64_t c = 0; c < C; ++c)
            for (int64_t kt = 0; kt < pt; ++kt)
              for (int64_t kh = 0; kh < ph; ++kh)
                for (int64_t kw = 0; kw < pw; ++kw)
                  s += at(wp, {d, c, kt, kh, kw}) * at(in.x, {c, f * pt + kt, h * ph + kh, w * pw + kw});
          a[static_cast<size_t>(d)] = s;
        }
        double mean = 0, var = 0;
        for (double v : a) mean += v / D;
        for (double v : a) var += (v - mean) * (v - mean) / D;
        for (int64_t d = 0; d < D; ++d)
          a[static_cast<size_t>(d)] = (a[static_cast<size_t>(d)] - mean) / std::sqrt(var + 1e-6) * (1 + at(mod, {0, 1, d})) +
                                      at(mod, {0, 0, d});
        for (int64_t k = 0; k < P * C; ++k) {
          double o = at(bh, {k});
          for (int64_t d = 0; d < D; ++d) o += at(wh, {k, d}) * a[static_cast<size_t>(d)];
          const int64_t p = k / (ph * pw * C), q = (k / (pw * C)) % ph, r = (k / C) % pw, c = k % C;
          ref[static_cast<size_t>(((c * F + f * pt + p) * H + h * ph + q) * W + w * pw + r)] = static_cast<float>(o);
        }
      }
  test::expect_close(out, Tensor::from_f32(ref, {C, F, H, W}), 1e-5, "patch 2x1x2 layout");
}

// Bad inputs are refused with a message that says what was expected.
TEST(Dit, InputErrors) {
  DitModel m = DitModel::load(fixture("wan21/dit_i2v.safetensors"));
  io::SafeTensors io = io::SafeTensors::open(fixture("wan21/dit_i2v.io.safetensors"));
  DitInputs in;
  in.x = io.get("case0.x");
  in.context = io.get("case0.context");
  in.clip_fea = io.get("case0.clip_fea");
  in.y = io.get("case0.y");
  in.t = Tensor::scalar_f32(500.f);
  auto expect_error = [&](const DitInputs& bad, const std::string& needle) {
    try {
      m.forward(bad);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  DitInputs bad = in;
  bad.clip_fea = Tensor();
  expect_error(bad, "needs clip_fea [257, 1280]");
  bad = in;
  bad.y = Tensor();
  expect_error(bad, "needs y [20, 3, 4, 6]");
  bad = in;
  bad.x = Tensor::zeros({17, 3, 4, 6}, DType::F32);
  expect_error(bad, "37 channels together; this i2v model takes in_dim 36");
  bad = in;
  bad.x = Tensor::zeros({16, 3, 5, 6}, DType::F32);
  bad.y = Tensor::zeros({20, 3, 5, 6}, DType::F32);
  expect_error(bad, "not a whole number of 1x2x2 patches");
  bad = in;
  bad.context = Tensor::zeros({7, 65}, DType::F32);
  expect_error(bad, "context must be [tokens, 64]");
  bad = in;
  bad.context = Tensor::zeros({513, 64}, DType::F32);
  expect_error(bad, "more than text_len 512");
  bad = in;
  bad.t = Tensor::from_f32({1.f, 2.f}, {2});
  expect_error(bad, "one per token ([18]");
}

}  // namespace
}  // namespace x2v::models::wan
