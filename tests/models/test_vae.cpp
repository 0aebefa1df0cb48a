// The Wan VAEs against the reference's outputs (../shared/fixtures/wan21/vae.*, wan22/vae22.*), plus the
// chunking's memory-relevant behaviour and the diffusers name map.
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "io/safetensors.h"
#include "io/weights.h"
#include "models/wan/vae.h"
#include "testutil.h"

using namespace x2v;
using namespace x2v::models::wan;

namespace {

struct Loaded {
  std::shared_ptr<io::WeightStore> store;
  VaeConfig cfg;
  std::unique_ptr<WanVAE> vae;
};

Loaded load(const std::string& sub, const std::string& config_json = "{}") {
  Loaded l;
  l.store = vae_official_names(std::shared_ptr<io::WeightStore>(io::open_weights(test::fixture(sub))));
  l.cfg = resolve_vae_config(parse_vae_config(config_json, "test config"), *l.store);
  l.vae = std::make_unique<WanVAE>(WanVAE::load(*l.store, l.cfg));
  return l;
}

void expect_close_report(const Tensor& got, const Tensor& ref, double tol, const std::string& what) {
  test::expect_close(got, ref, tol, what);
  if (got.shape() == ref.shape())
    std::printf("  %s: relative L2 %.3g\n", what.c_str(), test::rel_l2(got.to_vector(), ref.to_vector()));
}

void check_io(const WanVAE& vae, const std::string& io_sub, double tol) {
  io::SafeTensors io = io::SafeTensors::open(test::fixture(io_sub));
  std::vector<int64_t> seen;
  Tensor latent = vae.encode(io.get("video").to(DType::F32), [&](int64_t done, int64_t total) {
    seen.push_back(done);
    EXPECT_EQ(total, io.get("latent").size(1));
  });
  expect_close_report(latent, io.get("latent").to(DType::F32), tol, io_sub + " latent");
  EXPECT_EQ(static_cast<int64_t>(seen.size()), io.get("latent").size(1));

  Tensor raw;
  Tensor decoded = vae.decode(io.get("z").to(DType::F32), &raw);
  expect_close_report(decoded, io.get("decoded").to(DType::F32), tol, io_sub + " decoded");
  expect_close_report(raw, io.get("decoded_unclamped").to(DType::F32), tol, io_sub + " decoded_unclamped");
  // The clamp did something: otherwise the two outputs would not tell clamping apart.
  auto rv = raw.to_vector();
  bool outside = false;
  for (float v : rv) outside |= v < -1.f || v > 1.f;
  EXPECT_TRUE(outside) << "fixture decode never leaves [-1, 1]; the clamp is untested";
  // Streaming decode hands over 1 frame, then 4 per latent frame, in order.
  std::vector<int64_t> sizes;
  vae.decode_stream(io.get("z").to(DType::F32), [&](const Tensor& c, const Tensor& u) {
    EXPECT_EQ(c.shape(), u.shape());
    sizes.push_back(c.size(1));
  });
  std::vector<int64_t> want{1};
  want.resize(static_cast<size_t>(io.get("z").size(1)), 4);
  EXPECT_EQ(sizes, want);
  // Decoding without asking for the unclamped output gives the same clamped video.
  test::expect_close(vae.decode(io.get("z").to(DType::F32)), decoded, 0.0, "decode without unclamped");
}

}  // namespace

TEST(WanVae21, ConfigInferredFromWeights) {
  Loaded l = load("wan21/vae.safetensors");
  EXPECT_EQ(l.cfg.version, 21);
  EXPECT_EQ(l.cfg.dim, 16);
  EXPECT_EQ(l.cfg.z_dim, 16);
  EXPECT_EQ(l.cfg.spatial_stride(), 8);
  EXPECT_EQ(l.cfg.latent_mean.size(), 16u);
  // The published statistics, rounded to f32 like meta.json's copies of them.
  EXPECT_EQ(l.cfg.latent_mean[7], 1.5507999658584595f);
  EXPECT_EQ(l.cfg.latent_std[0], 2.8183999061584473f);
  EXPECT_EQ(l.vae->latent_shape({3, 13, 32, 48}), (Shape{16, 4, 4, 6}));
  EXPECT_EQ(l.vae->latent_shape({3, 15, 32, 48}), (Shape{16, 4, 4, 6}));  // 2 trailing frames dropped
  EXPECT_EQ(l.vae->video_shape({16, 4, 4, 6}), (Shape{3, 13, 32, 48}));
}

TEST(WanVae21, MatchesReferenceFromBf16Safetensors) {
  Loaded l = load("wan21/vae.safetensors");
  check_io(*l.vae, "wan21/vae.io.safetensors", 1e-4);
}

TEST(WanVae21, MatchesReferenceFromFp32Pth) {
  Loaded l = load("wan21/vae.fp32.pth");
  check_io(*l.vae, "wan21/vae.io.safetensors", 1e-4);
}

TEST(WanVae21, ConfigFromMetaJsonAgreesAndWrongOnesAreRejected) {
  // meta.json's "vae.config" object, as the CLI would get it through --config.
  std::ifstream in(test::fixture("wan21/meta.json"));
  const std::string cfg = nlohmann::json::parse(in)["vae"]["config"].dump();
  Loaded l = load("wan21/vae.safetensors", cfg);
  EXPECT_EQ(l.cfg.temperal_downsample, (std::vector<bool>{false, true, true}));
  EXPECT_THROW(load("wan21/vae.safetensors", R"({"dim": 96})"), Error);          // weights say 16
  EXPECT_THROW(load("wan21/vae.safetensors", R"({"num_res_blocks": 3})"), Error); // missing tensors
  EXPECT_THROW(load("wan21/vae.safetensors", R"({"bogus": 1})"), Error);
  EXPECT_THROW(load("wan21/vae.safetensors", R"({"temperal_downsample": [false, false, true]})"), Error);
}

TEST(WanVae21, EncodeDropsTrailingFramesAndChecksShapes) {
  Loaded l = load("wan21/vae.safetensors");
  io::SafeTensors io = io::SafeTensors::open(test::fixture("wan21/vae.io.safetensors"));
  Tensor video = io.get("video").to(DType::F32);  // [3, 13, 32, 48]
  // Two more frames of noise after the 13: the reference never reads them.
  Tensor longer = Tensor::empty({3, 15, 32, 48}, DType::F32);
  Tensor noise = test::random_tensor({3, 15, 32, 48}, 3);
  longer.copy_from(noise);
  for (int64_t c = 0; c < 3; ++c) longer[c].slice(0, 13).copy_from(video[c]);
  test::expect_close(l.vae->encode(longer), io.get("latent").to(DType::F32), 1e-4, "15 frames");

  // A bf16 video is read as its f32 values.
  Tensor vb = video.to(DType::BF16);
  test::expect_close(l.vae->encode(vb), l.vae->encode(vb.to(DType::F32)), 0.0, "bf16 video");

  EXPECT_THROW(l.vae->encode(test::random_tensor({4, 5, 32, 48}, 1)), Error);   // channels
  EXPECT_THROW(l.vae->encode(test::random_tensor({3, 5, 36, 48}, 1)), Error);   // H % 8
  EXPECT_THROW(l.vae->encode(test::random_tensor({3, 5, 32}, 1)), Error);       // rank
  EXPECT_THROW(l.vae->decode(test::random_tensor({12, 2, 4, 6}, 1)), Error);    // z channels
}

TEST(WanVae21, ChunkedDecodeIsCausal) {
  // Decoding the first k latent frames gives exactly the first 1+4(k−1) frames of the full decode:
  // each chunk only sees the past through the caches.
  Loaded l = load("wan21/vae.safetensors");
  io::SafeTensors io = io::SafeTensors::open(test::fixture("wan21/vae.io.safetensors"));
  Tensor z = io.get("z").to(DType::F32);
  Tensor full = l.vae->decode(z);
  Tensor zs = Tensor::empty({16, 2, 4, 6}, DType::F32);
  for (int64_t c = 0; c < 16; ++c) zs[c].copy_from(z[c].slice(0, 2));
  Tensor part = l.vae->decode(zs);
  ASSERT_EQ(part.shape(), (Shape{3, 5, 32, 48}));
  Tensor ref = Tensor::empty({3, 5, 32, 48}, DType::F32);
  for (int64_t c = 0; c < 3; ++c) ref[c].copy_from(full[c].slice(0, 5));
  // Not bit-exact only because conv2 runs over 2 instead of 4 frames (another sgemm blocking).
  test::expect_close(part, ref, 1e-5, "prefix decode");
}

TEST(WanVae22, MatchesReference) {
  Loaded l = load("wan22/vae22.safetensors");
  EXPECT_EQ(l.cfg.version, 22);
  EXPECT_EQ(l.cfg.dim, 16);
  EXPECT_EQ(l.cfg.decoder_dim(), 24);
  EXPECT_EQ(l.cfg.z_dim, 48);
  EXPECT_EQ(l.cfg.spatial_stride(), 16);
  check_io(*l.vae, "wan22/vae22.io.safetensors", 1e-4);
}

// --- diffusers names: the official file renamed by an independent forward map (official → diffusers,
// written from wan-spec §8.4) must load through vae_official_names and compute the same.
namespace {
std::string resnet_to_diffusers(const std::string& s) {
  static const std::vector<std::pair<std::string, std::string>> m = {
      {"residual.0.", "norm1."}, {"residual.2.", "conv1."}, {"residual.3.", "norm2."}, {"residual.6.", "conv2."}, {"shortcut.", "conv_shortcut."}};
  for (const auto& [a, b] : m)
    if (s.rfind(a, 0) == 0) return b + s.substr(a.size());
  return s;
}

std::string to_diffusers21(const std::string& n) {
  auto starts = [&](const std::string& p) { return n.rfind(p, 0) == 0; };
  if (starts("conv1.")) return "quant_conv." + n.substr(6);
  if (starts("conv2.")) return "post_quant_conv." + n.substr(6);
  const std::string side = starts("encoder.") ? "encoder." : "decoder.";
  std::string r = n.substr(side.size());
  auto rs = [&](const std::string& p) { return r.rfind(p, 0) == 0; };
  if (rs("conv1.")) return side + "conv_in." + r.substr(6);
  if (rs("head.0.")) return side + "norm_out." + r.substr(7);
  if (rs("head.2.")) return side + "conv_out." + r.substr(7);
  if (rs("middle.0.")) return side + "mid_block.resnets.0." + resnet_to_diffusers(r.substr(9));
  if (rs("middle.2.")) return side + "mid_block.resnets.1." + resnet_to_diffusers(r.substr(9));
  if (rs("middle.1.")) return side + "mid_block.attentions.0." + r.substr(9);
  const std::string lv = side == "encoder." ? "downsamples." : "upsamples.";
  r = r.substr(lv.size());
  const size_t dot = r.find('.');
  const int k = std::stoi(r.substr(0, dot));
  std::string rest = r.substr(dot + 1);
  const bool resample = rest.rfind("resample.", 0) == 0 || rest.rfind("time_conv.", 0) == 0;
  if (side == "encoder.") return "encoder.down_blocks." + std::to_string(k) + "." + (resample ? rest : resnet_to_diffusers(rest));
  const int block = k / 4, j = k % 4;
  if (j == 3) return "decoder.up_blocks." + std::to_string(block) + ".upsamplers.0." + rest;
  return "decoder.up_blocks." + std::to_string(block) + ".resnets." + std::to_string(j) + "." + resnet_to_diffusers(rest);
}
}  // namespace

TEST(WanVae21, DiffusersNamesLoadAndMatch) {
  auto official = std::shared_ptr<io::WeightStore>(io::open_weights(test::fixture("wan21/vae.safetensors")));
  std::vector<std::pair<std::string, Tensor>> renamed;
  std::set<std::string> diff_names;
  for (const std::string& n : official->names()) {
    renamed.emplace_back(to_diffusers21(n), official->load(n));
    diff_names.insert(renamed.back().first);
    EXPECT_EQ(vae_name_from_diffusers(renamed.back().first, 21), n);
  }
  EXPECT_EQ(diff_names.size(), official->names().size());
  EXPECT_TRUE(diff_names.count("decoder.up_blocks.1.resnets.0.conv_shortcut.weight"));
  EXPECT_TRUE(diff_names.count("decoder.up_blocks.2.upsamplers.0.resample.1.weight"));
  const std::string path = test::temp_dir() + "/vae_diffusers.safetensors";
  io::write_safetensors(path, renamed);
  Loaded l;
  l.store = vae_official_names(std::shared_ptr<io::WeightStore>(io::open_weights(path)));
  EXPECT_EQ(l.store->names(), official->names());
  l.cfg = resolve_vae_config({}, *l.store);
  WanVAE vae = WanVAE::load(*l.store, l.cfg);
  io::SafeTensors io = io::SafeTensors::open(test::fixture("wan21/vae.io.safetensors"));
  test::expect_close(vae.decode(io.get("z").to(DType::F32)), io.get("decoded").to(DType::F32), 1e-4, "diffusers decode");
  // Wan2.2 names (spot checks of the regrouped layout).
  EXPECT_EQ(vae_name_from_diffusers("encoder.down_blocks.1.resnets.0.conv_shortcut.bias", 22),
            "encoder.downsamples.1.downsamples.0.shortcut.bias");
  EXPECT_EQ(vae_name_from_diffusers("encoder.down_blocks.2.downsampler.time_conv.weight", 22),
            "encoder.downsamples.2.downsamples.2.time_conv.weight");
  EXPECT_EQ(vae_name_from_diffusers("decoder.up_blocks.0.upsampler.resample.1.weight", 22),
            "decoder.upsamples.0.upsamples.3.resample.1.weight");
  EXPECT_EQ(vae_name_from_diffusers("decoder.up_blocks.3.resnets.2.norm2.gamma", 22),
            "decoder.upsamples.3.upsamples.2.residual.3.gamma");
}

TEST(WanVae, EncodeIsCausal) {
  // Encoding the first 1 and 5 frames gives the first 1 and 2 latent frames of the full encode (an image
  // is encoded as a one-frame video, as TI2V and I2V do).
  for (const auto& [w, io_name] : {std::pair{"wan21/vae.safetensors", "wan21/vae.io.safetensors"},
                                   std::pair{"wan22/vae22.safetensors", "wan22/vae22.io.safetensors"}}) {
    SCOPED_TRACE(w);
    Loaded l = load(w);
    io::SafeTensors io = io::SafeTensors::open(test::fixture(io_name));
    Tensor video = io.get("video").to(DType::F32), latent = io.get("latent").to(DType::F32);
    for (int64_t frames : {1, 5}) {
      Tensor v = Tensor::empty({3, frames, video.size(2), video.size(3)}, DType::F32);
      for (int64_t c = 0; c < 3; ++c) v[c].copy_from(video[c].slice(0, frames));
      const int64_t lt = 1 + (frames - 1) / 4;
      Tensor ref = Tensor::empty({latent.size(0), lt, latent.size(2), latent.size(3)}, DType::F32);
      for (int64_t c = 0; c < latent.size(0); ++c) ref[c].copy_from(latent[c].slice(0, lt));
      test::expect_close(l.vae->encode(v), ref, 1e-4, std::to_string(frames) + " frames");
    }
  }
}

TEST(WanVae21, AllInOnePrefixIsStripped) {
  auto official = std::shared_ptr<io::WeightStore>(io::open_weights(test::fixture("wan21/vae.safetensors")));
  std::vector<std::pair<std::string, Tensor>> t;
  for (const std::string& n : official->names()) t.emplace_back("first_stage_model." + n, official->load(n));
  t.emplace_back("model.diffusion_model.head.head.weight", test::random_tensor({4, 4}, 1));  // another network
  const std::string path = test::temp_dir() + "/all_in_one.safetensors";
  io::write_safetensors(path, t);
  auto store = vae_official_names(std::shared_ptr<io::WeightStore>(io::open_weights(path)));
  EXPECT_EQ(store->names(), official->names());
  WanVAE vae = WanVAE::load(path);
  io::SafeTensors io = io::SafeTensors::open(test::fixture("wan21/vae.io.safetensors"));
  test::expect_close(vae.encode(io.get("video").to(DType::F32)), io.get("latent").to(DType::F32), 1e-4, "prefixed");
}
