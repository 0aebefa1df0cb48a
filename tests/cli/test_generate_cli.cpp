// `x2v generate` from the command line: the demo to a real MP4 (read back through the FFmpeg
// libraries) and to PNG frames, config files, and every class of bad input — each a clear message,
// a non-zero exit and no output file left behind.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/image.h"
#include "io/safetensors.h"
#include "io/video.h"
#include "testutil.h"

namespace x2v {
namespace {
namespace fs = std::filesystem;

std::string fx(const std::string& f) { return test::fixture("wan21/" + f); }

struct CliRun {
  int rc = -1;
  std::string out;
};
CliRun gen(const std::string& args) {
  CliRun r;
  r.rc = test::run(test::x2v_binary() + " generate " + args, &r.out);
  return r;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  return v;
}

std::string dit_config(const std::string& dit, const std::string& dir) {
  std::ifstream in(fx("meta.json"));
  const std::string path = dir + "/" + dit + "_config.json";
  std::ofstream(path) << nlohmann::json::parse(in).at(dit).at("config").dump();
  return path;
}

void expect_refused(const std::string& args, int rc, const std::string& needle);

// The fixture T2V model with the fixture's text embeddings: a complete, quick request.
std::string fixture_t2v(const std::string& dir) {
  return "--dit " + fx("dit_t2v.safetensors") + " --dit-config " + dit_config("dit_t2v", dir) + " --vae " +
         fx("vae.safetensors") + " --text-embeddings " + fx("e2e_t2v.io.safetensors");
}

TEST(GenerateCli, DemoWritesAnMp4) {
  if (!io::can_write_video_files()) GTEST_SKIP() << "built without FFmpeg";
  const std::string dir = test::temp_dir();
  const std::string mp4 = dir + "/demo.mp4";
  CliRun r = gen("--demo --size 64x48 --frames 9 --steps 2 --fps 24 -o " + mp4);
  ASSERT_EQ(r.rc, 0) << r.out;
  // The summary names every stage and the peak memory.
  for (const char* s : {"text encoder", "load DiT", "denoise", "VAE decode", "peak memory", "ETA"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  io::DecodedVideo v = io::read_video(mp4);
  EXPECT_EQ(v.info.frames, 9);
  EXPECT_EQ(v.info.width, 64);
  EXPECT_EQ(v.info.height, 48);
  EXPECT_EQ(v.info.fps_num, 24);
  EXPECT_EQ(v.info.fps_den, 1);
  EXPECT_EQ(v.info.codec, "h264");
  EXPECT_EQ(v.info.pixel_format, "yuv420p");
  ASSERT_EQ(v.frames.shape(), (Shape{9, 48, 64, 3}));
  // Only the MP4 is left: no temporary files, the demo folder is gone.
  EXPECT_EQ(entries(dir), std::vector<std::string>{"demo.mp4"});
}

TEST(GenerateCli, DemoDistilledToFrames) {
  const std::string dir = test::temp_dir();
  CliRun r = gen("--demo --step-list 1000,750,500,250 --size 32x32 --frames 5 -o " + dir + "/frames/");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("euler 4 steps"), std::string::npos) << r.out;
  EXPECT_EQ(entries(dir + "/frames").size(), 5u);
  // A demo with a model of one's own is a contradiction.
  expect_refused("--demo --model-dir " + dir + " -o @OUT/v.mp4", 2, "--demo");
}

TEST(GenerateCli, DemoImageToVideo) {
  if (!io::can_write_video_files()) GTEST_SKIP() << "built without FFmpeg";
  const std::string dir = test::temp_dir();
  io::write_png(dir + "/in.png", Tensor::zeros({30, 60, 3}, DType::U8));
  CliRun r = gen("--demo --task i2v --image " + dir + "/in.png --max-area 2048 --frames 5 --steps 1 -o " + dir + "/i2v.mp4");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("image encoder"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("VAE encode"), std::string::npos) << r.out;
  io::VideoInfo v = io::probe_video(dir + "/i2v.mp4");
  EXPECT_EQ(v.frames, 5);
  EXPECT_EQ(v.width, 64);  // 2048 px at 1:2: sqrt(4096) = 64 wide, sqrt(1024) = 32 high
  EXPECT_EQ(v.height, 32);
}

TEST(GenerateCli, PngFramesMatchTheTensor) {
  const std::string dir = test::temp_dir();
  const std::string frames = dir + "/frames/";
  CliRun r = gen("-q " + fixture_t2v(dir) + " --noise " + fx("e2e_t2v.io.safetensors") +
              " --size 48x32 --frames 9 --steps 2 --seed 1 -o " + frames + " --output-tensor " + dir + "/v.safetensors");
  ASSERT_EQ(r.rc, 0) << r.out;
  Tensor video = io::SafeTensors::open(dir + "/v.safetensors").get("video").to(DType::F32).clone();
  ASSERT_EQ(video.shape(), (Shape{3, 9, 32, 48}));
  Tensor expect = io::video_to_frames(video);  // the reference's pixel conversion
  for (int f = 0; f < 9; ++f) {
    char name[32];
    std::snprintf(name, sizeof name, "frame_%05d.png", f);
    Tensor png = io::read_image(frames + name);
    ASSERT_EQ(png.shape(), (Shape{32, 48, 3}));
    EXPECT_EQ(png.to_vector(), expect[f].to_vector()) << name;
  }
}

TEST(GenerateCli, SeedIsReproducibleAndMatters) {
  const std::string dir = test::temp_dir();
  auto run = [&](int seed, const std::string& out) {
    CliRun r = gen("-q " + fixture_t2v(dir) + " --size 32x32 --frames 5 --steps 2 --seed " + std::to_string(seed) +
                " --output-tensor " + out);
    EXPECT_EQ(r.rc, 0) << r.out;
    return io::SafeTensors::open(out).get("video").to_vector();
  };
  auto a = run(7, dir + "/a.safetensors"), b = run(7, dir + "/b.safetensors"), c = run(8, dir + "/c.safetensors");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(GenerateCli, ConfigFileKeysAndWarnings) {
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/cfg.json") << R"({"infer_steps": 2, "sample_shift": 3.0, "sample_guide_scale": 1.0,
      "target_height": 32, "target_width": 48, "target_video_length": 5, "seed": 3, "self_attn_1_type": "sage_attn2",
      "mystery_key": 1})";
  CliRun r = gen(fixture_t2v(dir) + " --config " + dir + "/cfg.json --output-tensor " + dir + "/v.safetensors");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("unknown key \"mystery_key\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("self_attn_1_type"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 steps (shift 3)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("guidance off"), std::string::npos) << r.out;
  EXPECT_EQ(io::SafeTensors::open(dir + "/v.safetensors").get("video").shape(), (Shape{3, 5, 32, 48}));
  // A command-line option overrides the file.
  r = gen(fixture_t2v(dir) + " --config " + dir + "/cfg.json --steps 1 --output-tensor " + dir + "/w.safetensors");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("1 steps"), std::string::npos) << r.out;
}

TEST(GenerateCli, NegativeEmbeddingOnlyWhenGuided) {
  const std::string dir = test::temp_dir();
  const std::string emb = dir + "/cond_only.safetensors";
  io::write_safetensors(emb, {{"context", io::SafeTensors::open(fx("e2e_t2v.io.safetensors")).get("context")}});
  const std::string common = "--dit " + fx("dit_t2v.safetensors") + " --vae " + fx("vae.safetensors") +
                             " --text-embeddings " + emb + " --size 32x32 --frames 5 --steps 1 --output-tensor " + dir;
  CliRun r = gen(common + "/a.safetensors --guide-scale 1");
  EXPECT_EQ(r.rc, 0) << r.out;
  r = gen(common + "/b.safetensors");
  EXPECT_EQ(r.rc, 3) << r.out;
  EXPECT_NE(r.out.find("context_null"), std::string::npos) << r.out;
}

TEST(GenerateCli, DistilledStepList) {
  const std::string dir = test::temp_dir();
  CliRun r = gen(fixture_t2v(dir) + " --size 32x32 --frames 5 --step-list 1000,750,500,250 --seed 1 --output-tensor " +
              dir + "/v.safetensors");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("euler 4 steps"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("guidance off"), std::string::npos) << r.out;
  // A LightX2V-named DiT run like a base model gets a hint; run with its step list it does not.
  const std::string distilled = dir + "/wan2.1_t2v_1.3b_lightx2v_4step.safetensors";
  fs::copy_file(fx("dit_t2v.safetensors"), distilled);
  const std::string rest = " --dit-config " + dit_config("dit_t2v", dir) + " --vae " + fx("vae.safetensors") +
                           " --text-embeddings " + fx("e2e_t2v.io.safetensors") +
                           " --size 32x32 --frames 5 --output-tensor " + dir + "/w.safetensors";
  r = gen("--dit " + distilled + rest + " --steps 1");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("looks like a step-distilled model"), std::string::npos) << r.out;
  r = gen("--dit " + distilled + rest + " --step-list 1000,750,500,250");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out.find("looks like a step-distilled model"), std::string::npos) << r.out;
}

// Each bad input: the exit code of its error kind, a message with `needle`, and an empty folder.
void expect_refused(const std::string& args, int rc, const std::string& needle) {
  const std::string dir = test::temp_dir();
  const std::string out = dir + "/out/";
  fs::create_directories(out);
  std::string a = args;
  for (size_t p; (p = a.find("@OUT")) != std::string::npos;) a.replace(p, 4, out);
  for (size_t p; (p = a.find("@CFG")) != std::string::npos;) a.replace(p, 4, fixture_t2v(dir));
  CliRun r = gen(a);
  EXPECT_EQ(r.rc, rc) << a << "\n" << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << a << "\n" << r.out;
  EXPECT_NE(r.out.find("error"), std::string::npos) << r.out;
  EXPECT_TRUE(entries(out).empty()) << a << ": left " << (entries(out).empty() ? "" : entries(out)[0]);
}

TEST(GenerateCli, BadSizesFramesSteps) {
  expect_refused("@CFG --size 50x32 -o @OUT/v.mp4", 2, "multiple of 16");
  expect_refused("@CFG --size 48 -o @OUT/v.mp4", 2, "WIDTHxHEIGHT");
  expect_refused("@CFG --size 100000x100000 -o @OUT/v.mp4", 2, "out of range");
  expect_refused("@CFG --frames 8 -o @OUT/v.mp4", 2, "4n+1");
  expect_refused("@CFG --frames 100001 -o @OUT/v.mp4", 2, "--frames");
  expect_refused("@CFG --steps 0 -o @OUT/v.mp4", 2, "--steps");
  expect_refused("@CFG --steps 5000 -o @OUT/v.mp4", 2, "--steps");
  expect_refused("@CFG --shift -2 -o @OUT/v.mp4", 2, "--shift");
  expect_refused("@CFG --guide-scale 1e6 -o @OUT/v.mp4", 2, "--guide-scale");
  expect_refused("@CFG --solver ddim -o @OUT/v.mp4", 2, "unknown solver");
  expect_refused("@CFG --step-list 1000,abc -o @OUT/v.mp4", 2, "--step-list");
  expect_refused("@CFG --task v2v -o @OUT/v.mp4", 2, "unknown task");
  expect_refused("@CFG --size 32x32 --frames 5 -o @OUT/v.gif", 2, "gif");
}

TEST(GenerateCli, BadImage) {
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/not_an_image.png") << "hello, I am text";
  const std::string i2v = "--task i2v --dit " + fx("dit_i2v.safetensors") + " --vae " + fx("vae.safetensors") +
                          " --text-embeddings " + fx("e2e_i2v.io.safetensors") + " --clip-embeddings " +
                          fx("e2e_i2v.io.safetensors") + " --frames 5 --steps 1 --max-area 1536";
  expect_refused(i2v + " --image " + dir + "/missing.png -o @OUT/v.mp4", 3, "missing.png");
  expect_refused(i2v + " --image " + dir + "/not_an_image.png -o @OUT/v.mp4", 4, "not_an_image.png");
  expect_refused("--task i2v @CFG -o @OUT/v.mp4", 2, "--image");
}

TEST(GenerateCli, ModelDoesNotFitTheTask) {
  // A T2V DiT asked for I2V, an I2V DiT asked for T2V.
  const std::string dir = test::temp_dir();
  io::write_png(dir + "/in.png", Tensor::zeros({32, 32, 3}, DType::U8));
  // (No CLIP given: the DiT's task is checked before the other files are looked for.)
  expect_refused("--task i2v --image " + dir + "/in.png @CFG -o @OUT/v.mp4", 2, "text-to-video DiT");
  expect_refused("--dit " + fx("dit_i2v.safetensors") + " --vae " + fx("vae.safetensors") + " --text-embeddings " +
                     fx("e2e_t2v.io.safetensors") + " -o @OUT/v.mp4",
                 2, "image-to-video DiT");
  // A component file of the wrong kind.
  expect_refused("--dit " + fx("vae.safetensors") + " --vae " + fx("vae.safetensors") + " --text-embeddings " +
                     fx("e2e_t2v.io.safetensors") + " -o @OUT/v.mp4",
                 2, "not a Wan DiT");
  expect_refused("--dit " + fx("dit_t2v.safetensors") + " --vae " + fx("t5.safetensors") + " --text-embeddings " +
                     fx("e2e_t2v.io.safetensors") + " --size 32x32 --frames 5 --steps 1 -o @OUT/v.mp4",
                 2, "not the Wan2.1 VAE");
  expect_refused("--task i2v --image " + dir + "/in.png --dit " + fx("dit_i2v.safetensors") + " --vae " +
                     fx("vae.safetensors") + " --text-embeddings " + fx("e2e_i2v.io.safetensors") + " --clip " +
                     fx("t5.safetensors") + " -o @OUT/v.mp4",
                 4, "is this the CLIP file?");
  expect_refused("--dit " + fx("dit_t2v.safetensors") + " --vae " + fx("vae.safetensors") + " --t5 " +
                     fx("clip.safetensors") + " --tokenizer " + dir + " --prompt cat -o @OUT/v.mp4",
                 4, "is this the text encoder file?");
  // Text embeddings of the wrong width for the DiT.
  const std::string wide = dir + "/wide.safetensors";
  io::write_safetensors(wide, {{"context", Tensor::zeros({4, 32}, DType::F32)}, {"context_null", Tensor::zeros({4, 32}, DType::F32)}});
  expect_refused("--dit " + fx("dit_t2v.safetensors") + " --vae " + fx("vae.safetensors") + " --text-embeddings " + wide +
                     " --size 32x32 --frames 5 --steps 1 -o @OUT/v.mp4",
                 2, "text_dim 64");
  // Noise of the wrong shape is found after the model loaded: still no output.
  expect_refused("@CFG --noise " + fx("e2e_t2v.io.safetensors") + " --size 32x32 --frames 5 --steps 1 -o @OUT/v.mp4", 2,
                 "--noise");
}

TEST(GenerateCli, MissingModelFilesAreNamed) {
  const std::string dir = test::temp_dir();
  fs::create_directories(dir + "/model");
  expect_refused("--model-dir " + dir + "/model --prompt cat -o @OUT/v.mp4", 3, "diffusion_pytorch_model.safetensors");
  expect_refused("--model-dir " + dir + "/nothing --prompt cat -o @OUT/v.mp4", 3, "--model-dir");
  expect_refused("--prompt cat -o @OUT/v.mp4", 2, "--model-dir");
  expect_refused("--dit " + fx("dit_t2v.safetensors") + " --prompt cat -o @OUT/v.mp4", 3, "--vae");
  expect_refused("--dit " + fx("dit_t2v.safetensors") + " --vae " + fx("vae.safetensors") + " --prompt cat -o @OUT/v.mp4",
                 3, "--t5");
  expect_refused("@CFG --config " + dir + "/none.json -o @OUT/v.mp4", 3, "none.json");
  std::ofstream(dir + "/bad.json") << "{\"infer_steps\": ";
  expect_refused("@CFG --config " + dir + "/bad.json -o @OUT/v.mp4", 4, "not valid JSON");
}

TEST(GenerateCli, UnwritableOutput) {
  const std::string dir = test::temp_dir();
  expect_refused("@CFG -o " + dir + "/no/such/folder/v.mp4", 6, "does not exist");
  std::ofstream(dir + "/file") << "x";
  expect_refused("@CFG -o " + dir + "/file/v.mp4", 6, "not a folder");
  expect_refused("@CFG --output-tensor " + dir + "/no/such/v.safetensors", 6, "does not exist");
  expect_refused("@CFG", 2, "no output");
}

}  // namespace
}  // namespace x2v
