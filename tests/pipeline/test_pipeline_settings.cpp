// Request resolution, I2V size arithmetic, the I2V mask, config files and noise.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "pipeline/config_file.h"
#include "pipeline/i2v.h"
#include "pipeline/noise.h"
#include "pipeline/request.h"
#include "testutil.h"

namespace x2v::pipeline {
namespace {

GenerateRequest t2v() {
  GenerateRequest r;
  r.prompt = "a cat";
  r.output = "out.mp4";
  return r;
}

GenerateRequest i2v() {
  GenerateRequest r = t2v();
  r.task = Task::I2V;
  r.image = "in.png";
  return r;
}

// Runs `f` and returns the message of the x2v::Error it throws (failing if it does not throw).
template <class F>
std::string error_of(F f, ErrorKind kind = ErrorKind::InvalidArgument) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(Settings, ReferenceDefaults) {
  GenerateSettings s = resolve(t2v());
  EXPECT_EQ(s.width, 832);
  EXPECT_EQ(s.height, 480);
  EXPECT_EQ(s.frames, 81);
  EXPECT_EQ(s.sampler.steps, 50);
  EXPECT_EQ(s.sampler.shift, 5.0);
  EXPECT_EQ(s.sampler.solver, sched::Solver::UniPC);
  EXPECT_EQ(s.guide_scale, 5.0);
  EXPECT_TRUE(s.cfg);
  EXPECT_EQ(s.fps, 16);
  EXPECT_EQ(s.latent_frames(), 21);
  EXPECT_EQ(s.negative_prompt, default_negative_prompt(Task::T2V));
  // The separators of the reference string are full-width commas.
  EXPECT_NE(s.negative_prompt.find("\xEF\xBC\x8C"), std::string::npos);

  GenerateSettings i = resolve(i2v());
  EXPECT_EQ(i.sampler.steps, 40);
  EXPECT_EQ(i.max_area, 832 * 480);
  EXPECT_EQ(i.sampler.shift, 3.0);  // the reference's 480p I2V shift
  EXPECT_EQ(i.negative_prompt.rfind("镜头晃动，", 0), 0u);
  GenerateRequest r = i2v();
  r.max_area = 1280 * 720;
  EXPECT_EQ(resolve(r).sampler.shift, 5.0);
  r = i2v();
  r.width = 1280;
  r.height = 720;
  EXPECT_EQ(resolve(r).max_area, 921600);
}

TEST(Settings, EmptyNegativePromptMeansDefault) {
  GenerateRequest r = t2v();
  r.negative_prompt = "";
  EXPECT_EQ(resolve(r).negative_prompt, default_negative_prompt(Task::T2V));
  r.negative_prompt = "blurry";
  EXPECT_EQ(resolve(r).negative_prompt, "blurry");
}

TEST(Settings, DistilledAndCfgPolicy) {
  GenerateRequest r = t2v();
  r.step_list = {1000, 750, 500, 250};
  GenerateSettings s = resolve(r);
  EXPECT_EQ(s.sampler.solver, sched::Solver::Euler);
  EXPECT_EQ(s.sampler.steps, 4);
  EXPECT_FALSE(s.cfg);
  r.enable_cfg = true;
  EXPECT_TRUE(resolve(r).cfg);

  EXPECT_TRUE(s.notes.empty());
  r.enable_cfg.reset();
  r.guide_scale = 5.0;
  s = resolve(r);
  EXPECT_FALSE(s.cfg);
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_NE(s.notes[0].find("--guide-scale is ignored"), std::string::npos);

  r = t2v();
  r.solver = sched::Solver::Euler;
  s = resolve(r);
  EXPECT_EQ(s.sampler.step_list, sched::default_step_list());
  EXPECT_FALSE(s.cfg);

  r = t2v();
  r.guide_scale = 1.0;
  EXPECT_FALSE(resolve(r).cfg);
  r.guide_scale = 1.5;
  EXPECT_TRUE(resolve(r).cfg);

  r = t2v();
  r.solver = sched::Solver::DPMpp;
  r.step_list = {1000, 500};
  EXPECT_NE(error_of([&] { resolve(r); }).find("--step-list"), std::string::npos);
  r = t2v();
  r.step_list = {1000, 500};
  r.steps = 3;
  EXPECT_NE(error_of([&] { resolve(r); }).find("does not match"), std::string::npos);
}

TEST(Settings, BadInputsNameTheOption) {
  auto with = [](auto edit) {
    GenerateRequest r = t2v();
    edit(r);
    return error_of([&] { resolve(r); });
  };
  EXPECT_NE(with([](auto& r) { r.width = 830, r.height = 480; }).find("multiple of 16"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.width = 832, r.height = 100000; }).find("out of range"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.width = 832; }).find("both"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.frames = 80; }).find("4n+1"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.width = 4096, r.height = 4096, r.frames = 81; }).find("tokens"), std::string::npos);
  EXPECT_EQ(video_tokens(1280, 720, 81), 75600);
  EXPECT_EQ(video_tokens(832, 480, 81), 32760);
  EXPECT_NE(with([](auto& r) { r.frames = 0; }).find("--frames"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.steps = 0; }).find("--steps"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.steps = 1000000; }).find("--steps"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.shift = -1; }).find("--shift"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.shift = NAN; }).find("--shift"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.guide_scale = 1e9; }).find("--guide-scale"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.fps = 0; }).find("--fps"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.prompt.clear(); }).find("--prompt"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.output.clear(); }).find("-o"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.image = "x.png"; }).find("--image"), std::string::npos);
  EXPECT_NE(with([](auto& r) { r.max_area = 1000; }).find("--max-area"), std::string::npos);
  GenerateRequest r = i2v();
  r.image.clear();
  EXPECT_NE(error_of([&] { resolve(r); }).find("--image"), std::string::npos);
  r = i2v();
  r.max_area = 10;
  EXPECT_NE(error_of([&] { resolve(r); }).find("--max-area"), std::string::npos);
  // A prompt is optional when the text embeddings are given.
  r = t2v();
  r.prompt.clear();
  r.text_embeddings = "emb.safetensors";
  EXPECT_NO_THROW(resolve(r));
}

TEST(Settings, SeedIsKeptOrDrawn) {
  GenerateRequest r = t2v();
  r.seed = 42;
  EXPECT_EQ(resolve(r).seed, 42u);
  r.seed = -1;
  uint64_t a = resolve(r).seed, b = resolve(r).seed;
  EXPECT_NE(a, b);  // drawn fresh each time
}

TEST(I2VSize, ReferenceArithmetic) {
  // Values computed with Python's float floor division; the first is the 464-not-480 quirk.
  EXPECT_EQ(py_floordiv(479.99999999999994, 8.0), 59.0);
  I2VSize s = i2v_size(480, 832, 399360);
  EXPECT_EQ(s.lat_h, 58);
  EXPECT_EQ(s.height(), 464);
  EXPECT_EQ(s.lat_w, 104);
  s = i2v_size(720, 1280, 921600);
  EXPECT_EQ(s.lat_h, 90);
  EXPECT_EQ(s.lat_w, 160);
  s = i2v_size(37, 53, 1536);  // the e2e_i2v fixture: noise [16, 3, 4, 4]
  EXPECT_EQ(s.lat_h, 4);
  EXPECT_EQ(s.lat_w, 4);
  s = i2v_size(832, 480, 399360);  // portrait: here the division is exact, 480 stays 480
  EXPECT_EQ(s.width(), 480);
  EXPECT_EQ(s.height(), 832);
  s = i2v_size(1000, 1000, 399360);  // sqrt = 631.93.. -> 78 -> 39 -> 78
  EXPECT_EQ(s.lat_h, 78);
  EXPECT_EQ(s.lat_w, 78);
  EXPECT_NE(error_of([] { i2v_size(1, 4000, 1536); }).find("elongated"), std::string::npos);
}

TEST(I2VSize, FloorDivMatchesPythonOnSigns) {
  EXPECT_EQ(py_floordiv(7.0, 2.0), 3.0);
  EXPECT_EQ(py_floordiv(-7.0, 2.0), -4.0);
  EXPECT_EQ(py_floordiv(7.0, -2.0), -4.0);
  EXPECT_EQ(py_floordiv(16.0, 8.0), 2.0);
  // Here a / b rounds up to an integer, so floor(a / b) differs from Python's 0.5 // 0.1 == 4.0.
  EXPECT_EQ(std::floor(0.5 / 0.1), 5.0);
  EXPECT_EQ(py_floordiv(0.5, 0.1), 4.0);
  EXPECT_EQ(py_floordiv(1.0, 0.1), 9.0);
}

TEST(I2VMask, FirstLatentFrameOnly) {
  Tensor m = i2v_mask(9, 2, 3);
  ASSERT_EQ(m.shape(), (Shape{4, 3, 2, 3}));
  const float* p = m.data<float>();
  for (int c = 0; c < 4; ++c)
    for (int k = 0; k < 3; ++k)
      for (int i = 0; i < 6; ++i) EXPECT_EQ(p[(c * 3 + k) * 6 + i], k == 0 ? 1.f : 0.f) << c << " " << k;
  Tensor one = i2v_mask(1, 2, 2);
  ASSERT_EQ(one.shape(), (Shape{4, 1, 2, 2}));
  for (float v : one.to_vector()) EXPECT_EQ(v, 1.f);
}

TEST(ConfigFile, LightX2VKeys) {
  const std::string dir = test::temp_dir();
  const std::string path = dir + "/cfg.json";
  std::ofstream(path) << R"({"infer_steps": 4, "sample_shift": 5.0, "sample_guide_scale": [5, 5],
    "enable_cfg": false, "denoising_step_list": [1000, 750, 500, 250], "target_height": 480,
    "target_width": 832, "target_video_length": 81, "fps": 16, "seed": 7, "self_attn_1_type": "flash_attn3",
    "cpu_offload": false, "frobnicate": 1, "dim": 5120, "text_len": 512, "vae_stride": [4, 8, 8]})";
  GenerateRequest r = t2v();
  auto w = apply_config_file(path, r);
  EXPECT_EQ(r.steps, 4);
  EXPECT_EQ(r.shift, 5.0);
  EXPECT_EQ(r.guide_scale, 5.0);
  EXPECT_EQ(r.enable_cfg, false);
  EXPECT_EQ(r.step_list, (std::vector<int>{1000, 750, 500, 250}));
  EXPECT_EQ(r.height, 480);
  EXPECT_EQ(r.width, 832);
  EXPECT_EQ(r.frames, 81);
  EXPECT_EQ(r.seed, 7);
  ASSERT_EQ(w.size(), 4u);
  std::string all;
  for (auto& s : w) all += s + "\n";
  EXPECT_NE(all.find("unknown key \"frobnicate\""), std::string::npos);
  EXPECT_NE(all.find("self_attn_1_type"), std::string::npos);
  EXPECT_NE(all.find("cpu_offload"), std::string::npos);
  EXPECT_NE(all.find("\"dim\""), std::string::npos);
  GenerateSettings s = resolve(r);
  EXPECT_EQ(s.sampler.solver, sched::Solver::Euler);
  EXPECT_FALSE(s.cfg);
}

TEST(ConfigFile, Errors) {
  GenerateRequest r = t2v();
  using nlohmann::json;
  EXPECT_NE(error_of([&] { apply_config_json(json::parse(R"({"infer_steps": "many"})"), "c.json", r); })
                .find("\"infer_steps\" must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of([&] { apply_config_json(json::parse(R"({"infer_steps": 2.5})"), "c.json", r); })
                .find("infer_steps"),
            std::string::npos);
  error_of([&] { apply_config_json(json::parse(R"({"sample_guide_scale": [3.5, 4]})"), "c.json", r); },
           ErrorKind::Unsupported);
  error_of([&] { apply_config_json(json::parse(R"({"model_cls": "hunyuan_video_1.5"})"), "c.json", r); },
           ErrorKind::Unsupported);
  error_of([&] { apply_config_json(json::parse(R"({"vae_stride": [4, 16, 16]})"), "c.json", r); },
           ErrorKind::Unsupported);
  error_of([&] { apply_config_json(json::parse(R"([1, 2])"), "c.json", r); }, ErrorKind::BadFile);
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/bad.json") << "{ not json";
  error_of([&] { apply_config_file(dir + "/bad.json", r); }, ErrorKind::BadFile);
  error_of([&] { apply_config_file(dir + "/missing.json", r); }, ErrorKind::NotFound);
}

TEST(Noise, DeterministicStandardNormal) {
  Tensor a = gaussian_noise({16, 3, 8, 9}, 42), b = gaussian_noise({16, 3, 8, 9}, 42), c = gaussian_noise({16, 3, 8, 9}, 43);
  auto va = a.to_vector(), vb = b.to_vector(), vc = c.to_vector();
  EXPECT_EQ(va, vb);
  EXPECT_NE(va, vc);
  double mean = 0, var = 0;
  for (float v : va) mean += v;
  mean /= va.size();
  for (float v : va) var += (v - mean) * (v - mean);
  var /= va.size();
  // 3456 samples: mean within ~4 standard errors, variance within ~10%.
  EXPECT_LT(std::fabs(mean), 0.07);
  EXPECT_NEAR(var, 1.0, 0.1);
  // An odd element count fills every element.
  Tensor odd = gaussian_noise({7}, 1);
  for (float v : odd.to_vector()) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(gaussian_noise({5}, 1).to_vector()[4], gaussian_noise({6}, 1).to_vector()[4]);
}

}  // namespace
}  // namespace x2v::pipeline
