// `x2v generate` against the end-to-end fixtures of the official Wan2.1 pipelines (tiny random
// models): T2V with UniPC, T2V with DPM++, I2V with UniPC (the input image written as a PNG).
// The text, CLIP and noise tensors come from the fixture files; the DiT and VAE run for real.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/image.h"
#include "io/safetensors.h"
#include "testutil.h"

namespace x2v {
namespace {

const std::string kDir = "wan21/";

// The DiT's constructor configuration from meta.json, as a config.json.
std::string dit_config(const std::string& dit, const std::string& dir) {
  std::ifstream in(test::fixture(kDir + "meta.json"));
  nlohmann::json meta = nlohmann::json::parse(in);
  const std::string path = dir + "/" + dit + "_config.json";
  std::ofstream(path) << meta.at(dit).at("config").dump();
  return path;
}

nlohmann::json e2e_meta(const std::string& name) {
  std::ifstream in(test::fixture(kDir + "meta.json"));
  return nlohmann::json::parse(in).at(name);
}

// Runs the CLI; returns the decoded video it wrote.
Tensor run_generate(const std::string& args, const std::string& out) {
  std::string log;
  const int rc = test::run(test::x2v_binary() + " generate -q " + args + " --output-tensor " + out, &log);
  EXPECT_EQ(rc, 0) << log;
  if (rc != 0) return {};
  return io::SafeTensors::open(out).get("video").to(DType::F32).clone();
}

std::string fx(const std::string& f) { return test::fixture(kDir + f); }

TEST(GenerateE2E, T2VUniPC) {
  const nlohmann::json m = e2e_meta("e2e_t2v");
  ASSERT_EQ(m.at("solver"), "unipc");
  const std::string dir = test::temp_dir();
  const std::string io = fx("e2e_t2v.io.safetensors");
  std::ostringstream a;
  a << "--dit " << fx("dit_t2v.safetensors") << " --dit-config " << dit_config("dit_t2v", dir) << " --vae "
    << fx("vae.safetensors") << " --text-embeddings " << io << " --noise " << io << " --size "
    << m.at("size_wh")[0].get<int>() << "x" << m.at("size_wh")[1].get<int>() << " --frames " << m.at("frames").get<int>()
    << " --steps " << m.at("steps").get<int>() << " --shift " << m.at("shift").get<double>() << " --guide-scale "
    << m.at("guide_scale").get<double>() << " --solver unipc";
  Tensor video = run_generate(a.str(), dir + "/video.safetensors");
  ASSERT_TRUE(video.defined());
  Tensor ref = io::SafeTensors::open(io).get("video");
  std::printf("e2e_t2v video: relative L2 %.3g\n", test::rel_l2(video.to_vector(), ref.to_vector()));
  test::expect_close(video, ref, 1e-3, "e2e_t2v video");
}

TEST(GenerateE2E, T2VDpmpp) {
  const nlohmann::json m = e2e_meta("e2e_t2v_dpm");
  ASSERT_EQ(m.at("solver"), "dpm++");
  const std::string dir = test::temp_dir();
  const std::string io = fx("e2e_t2v_dpm.io.safetensors");
  std::ostringstream a;
  a << "--dit " << fx("dit_t2v.safetensors") << " --dit-config " << dit_config("dit_t2v", dir) << " --vae "
    << fx("vae.safetensors") << " --text-embeddings " << io << " --noise " << io << " --size "
    << m.at("size_wh")[0].get<int>() << "x" << m.at("size_wh")[1].get<int>() << " --frames " << m.at("frames").get<int>()
    << " --steps " << m.at("steps").get<int>() << " --shift " << m.at("shift").get<double>() << " --guide-scale "
    << m.at("guide_scale").get<double>() << " --solver dpm++";
  Tensor video = run_generate(a.str(), dir + "/video.safetensors");
  ASSERT_TRUE(video.defined());
  Tensor ref = io::SafeTensors::open(io).get("video");
  std::printf("e2e_t2v_dpm video: relative L2 %.3g\n", test::rel_l2(video.to_vector(), ref.to_vector()));
  test::expect_close(video, ref, 1e-3, "e2e_t2v_dpm video");
}

TEST(GenerateE2E, I2VUniPC) {
  const nlohmann::json m = e2e_meta("e2e_i2v");
  const std::string dir = test::temp_dir();
  const std::string io = fx("e2e_i2v.io.safetensors");
  Tensor image = io::SafeTensors::open(io).get("image_u8_hwc");
  ASSERT_EQ(image.shape(), (Shape{m.at("image_hw")[0].get<int64_t>(), m.at("image_hw")[1].get<int64_t>(), 3}));
  const std::string png = dir + "/input.png";
  io::write_png(png, image.clone());
  std::ostringstream a;
  a << "--task i2v --image " << png << " --max-area " << m.at("max_area").get<int64_t>() << " --dit "
    << fx("dit_i2v.safetensors") << " --dit-config " << dit_config("dit_i2v", dir) << " --vae " << fx("vae.safetensors")
    << " --text-embeddings " << io << " --clip-embeddings " << io << " --noise " << io << " --frames "
    << m.at("frames").get<int>() << " --steps " << m.at("steps").get<int>() << " --shift " << m.at("shift").get<double>()
    << " --guide-scale " << m.at("guide_scale").get<double>() << " --solver unipc";
  Tensor video = run_generate(a.str(), dir + "/video.safetensors");
  ASSERT_TRUE(video.defined());
  Tensor ref = io::SafeTensors::open(io).get("video");
  std::printf("e2e_i2v video: relative L2 %.3g\n", test::rel_l2(video.to_vector(), ref.to_vector()));
  test::expect_close(video, ref, 1e-3, "e2e_i2v video");
}

// The same run described by a LightX2V-style config file instead of flags.
TEST(GenerateE2E, T2VFromLightX2VConfig) {
  const std::string dir = test::temp_dir();
  const std::string io = fx("e2e_t2v.io.safetensors");
  std::ofstream(dir + "/run.json") << R"({"infer_steps": 6, "sample_shift": 5.0, "sample_guide_scale": 5.0,
      "enable_cfg": true, "target_height": 32, "target_width": 48, "target_video_length": 9, "fps": 16})";
  Tensor video = run_generate("--config " + dir + "/run.json --dit " + fx("dit_t2v.safetensors") + " --dit-config " +
                                  dit_config("dit_t2v", dir) + " --vae " + fx("vae.safetensors") +
                                  " --text-embeddings " + io + " --noise " + io,
                              dir + "/video.safetensors");
  ASSERT_TRUE(video.defined());
  test::expect_close(video, io::SafeTensors::open(io).get("video"), 1e-3, "e2e_t2v video from a config file");
}

// The same T2V run without guidance differs from the fixture: the test above would notice a
// pipeline that ignored the unconditional pass.
TEST(GenerateE2E, GuidanceMatters) {
  const std::string dir = test::temp_dir();
  const std::string io = fx("e2e_t2v.io.safetensors");
  std::ostringstream a;
  a << "--dit " << fx("dit_t2v.safetensors") << " --dit-config " << dit_config("dit_t2v", dir) << " --vae "
    << fx("vae.safetensors") << " --text-embeddings " << io << " --noise " << io
    << " --size 48x32 --frames 9 --steps 6 --shift 5 --guide-scale 1";
  Tensor video = run_generate(a.str(), dir + "/video.safetensors");
  ASSERT_TRUE(video.defined());
  const double e = test::rel_l2(video.to_vector(), io::SafeTensors::open(io).get("video").to_vector());
  EXPECT_GT(e, 1e-2);
}

}  // namespace
}  // namespace x2v
