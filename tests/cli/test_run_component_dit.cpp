// `x2v run-component dit`: outputs against the fixtures, and every class of bad input a clear
// message with a non-zero exit and no output file.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "testutil.h"

namespace x2v {
namespace {

namespace fs = std::filesystem;
using test::fixture;

struct CliRun {
  int rc = -1;
  std::string out;
};

CliRun dit(const std::string& args) {
  CliRun r;
  r.rc = test::run(test::x2v_binary() + " run-component dit " + args, &r.out);
  return r;
}

float timestep(const std::string& set, const std::string& key) {
  std::ifstream in(fixture(set + "/meta.json"));
  return nlohmann::json::parse(in).at(key.substr(0, key.find('/'))).at(key.substr(key.find('/') + 1)).get<float>();
}

// An inputs file with the named tensors of a fixture's io file (renamed) plus t.
std::string inputs(const std::string& dir, const std::string& io_file, const std::string& prefix,
                   const std::vector<std::string>& names, const Tensor& t, const std::string& file = "in.safetensors") {
  io::SafeTensors io = io::SafeTensors::open(fixture(io_file));
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const auto& n : names) ts.emplace_back(n, io.get(prefix + n));
  if (t.defined()) ts.emplace_back("t", t);
  const std::string path = dir + "/" + file;
  io::write_safetensors(path, ts);
  return path;
}

Tensor output(const std::string& path) { return io::SafeTensors::open(path).get("out"); }

TEST(RunComponentDit, T2VEveryCaseAndTimestep) {
  const std::string dir = test::temp_dir();
  io::SafeTensors io = io::SafeTensors::open(fixture("wan21/dit_t2v.io.safetensors"));
  for (const std::string cs : {"case0", "case1"})
    for (int k = 0; k < 3; ++k) {
      const std::string tk = cs + ".t" + std::to_string(k);
      // t as a scalar for t0, as [1] otherwise: both are accepted.
      const float tv = timestep("wan21", "dit_t2v/" + tk + ".timestep");
      Tensor t = k == 0 ? Tensor::scalar_f32(tv) : Tensor::from_f32({tv}, {1});
      const std::string in = inputs(dir, "wan21/dit_t2v.io.safetensors", cs + ".", {"x", "context"}, t);
      const std::string out = dir + "/" + tk + ".safetensors";
      CliRun r = dit("--weights " + fixture("wan21/dit_t2v.safetensors") + " --inputs " + in + " --output " + out);
      ASSERT_EQ(r.rc, 0) << r.out;
      test::expect_close(output(out), io.get(tk + ".out"), 1e-4, "cli " + tk);
    }
}

TEST(RunComponentDit, I2VWithConfigAndDiffusersNames) {
  const std::string dir = test::temp_dir();
  io::SafeTensors io = io::SafeTensors::open(fixture("wan21/dit_i2v.io.safetensors"));
  std::ifstream mj(fixture("wan21/meta.json"));
  std::ofstream(dir + "/cfg.json") << nlohmann::json::parse(mj).at("dit_i2v").at("config").dump();
  for (const std::string w : {"dit_i2v.safetensors", "dit_i2v.diffusers.safetensors"})
    for (int k = 0; k < 3; ++k) {
      const std::string tk = "case0.t" + std::to_string(k);
      Tensor t = Tensor::from_f32({timestep("wan21", "dit_i2v/" + tk + ".timestep")}, {1});
      const std::string in = inputs(dir, "wan21/dit_i2v.io.safetensors", "case0.", {"x", "context", "clip_fea", "y"}, t);
      const std::string out = dir + "/out.safetensors";
      CliRun r = dit("--weights " + fixture("wan21/" + w) + " --config " + dir + "/cfg.json --inputs " + in + " --output " + out);
      ASSERT_EQ(r.rc, 0) << r.out;
      test::expect_close(output(out), io.get(tk + ".out"), 1e-4, "cli " + w + " " + tk);
    }
}

TEST(RunComponentDit, Wan22PerTokenTimesteps) {
  const std::string dir = test::temp_dir();
  io::SafeTensors io = io::SafeTensors::open(fixture("wan22/dit_ti2v.io.safetensors"));
  const std::string in = inputs(dir, "wan22/dit_ti2v.io.safetensors", "", {"x", "context"}, io.get("t_per_token"));
  CliRun r = dit("--weights " + fixture("wan22/dit_ti2v.safetensors") + " --inputs " + in + " --output " + dir + "/o.safetensors");
  ASSERT_EQ(r.rc, 0) << r.out;
  test::expect_close(output(dir + "/o.safetensors"), io.get("out_token_t"), 1e-4, "cli ti2v per-token t");
}

// A failed run exits non-zero, says what was wrong, and leaves no output behind.
void expect_failure(const std::string& args, const std::string& out, int rc, std::initializer_list<std::string> needles) {
  CliRun r = dit(args + " --output " + out);
  EXPECT_EQ(r.rc, rc) << r.out;
  for (const auto& n : needles) EXPECT_NE(r.out.find(n), std::string::npos) << "\"" << n << "\" not in: " << r.out;
  EXPECT_FALSE(fs::exists(out)) << out;
}

TEST(RunComponentDit, Errors) {
  const std::string dir = test::temp_dir();
  const std::string out = dir + "/never.safetensors";
  const std::string t2v = " --weights " + fixture("wan21/dit_t2v.safetensors");
  const std::string i2v = " --weights " + fixture("wan21/dit_i2v.safetensors");
  const Tensor t = Tensor::scalar_f32(999.f);

  // A device that is no device; a device this build may lack (the CPU build has no CUDA backend).
  std::string in = inputs(dir, "wan21/dit_t2v.io.safetensors", "case0.", {"x", "context"}, t, "ok.safetensors");
  expect_failure(t2v + " --device tpu --inputs " + in, out, 2, {"--device tpu: use cpu or cuda"});
  if (!device_allocator(Device::CUDA))
    expect_failure(t2v + " --device cuda --inputs " + in, out, 5, {"no cuda backend in this build", "--device cpu"});

  // Missing input tensor.
  in = inputs(dir, "wan21/dit_t2v.io.safetensors", "case0.", {"x"}, t, "no_context.safetensors");
  expect_failure(t2v + " --inputs " + in, out, 2, {"no_context.safetensors", "need \"context\""});
  in = inputs(dir, "wan21/dit_t2v.io.safetensors", "case0.", {"x", "context"}, Tensor(), "no_t.safetensors");
  expect_failure(t2v + " --inputs " + in, out, 2, {"need \"t\""});

  // Wrong x channels.
  {
    io::SafeTensors io = io::SafeTensors::open(fixture("wan21/dit_t2v.io.safetensors"));
    const std::string p = dir + "/x17.safetensors";
    io::write_safetensors(p, {{"x", Tensor::zeros({17, 3, 4, 6}, DType::F32)}, {"t", t}, {"context", io.get("case0.context")}});
    expect_failure(t2v + " --inputs " + p, out, 2, {"x [17, 3, 4, 6] has 17 channels", "in_dim 16"});
    const std::string q = dir + "/x3d.safetensors";
    io::write_safetensors(q, {{"x", Tensor::zeros({16, 4, 6}, DType::F32)}, {"t", t}, {"context", io.get("case0.context")}});
    expect_failure(t2v + " --inputs " + q, out, 2, {"\"x\" has shape [16, 4, 6], expected 4 dimensions"});
  }

  // I2V without clip_fea, without y.
  in = inputs(dir, "wan21/dit_i2v.io.safetensors", "case0.", {"x", "context", "y"}, t, "no_clip.safetensors");
  expect_failure(i2v + " --inputs " + in, out, 2, {"i2v DiT needs \"clip_fea\" [257, 1280]"});
  in = inputs(dir, "wan21/dit_i2v.io.safetensors", "case0.", {"x", "context", "clip_fea"}, t, "no_y.safetensors");
  expect_failure(i2v + " --inputs " + in, out, 2, {"i2v DiT needs \"y\" [20, F, H, W]"});
  // Wrong clip_fea shape.
  {
    io::SafeTensors io = io::SafeTensors::open(fixture("wan21/dit_i2v.io.safetensors"));
    const std::string p = dir + "/clip_short.safetensors";
    io::write_safetensors(p, {{"x", io.get("case0.x")}, {"t", t}, {"context", io.get("case0.context")},
                              {"y", io.get("case0.y")}, {"clip_fea", Tensor::zeros({256, 1280}, DType::F32)}});
    expect_failure(i2v + " --inputs " + p, out, 2, {"clip_fea must be [257, 1280], got [256, 1280]"});
  }

  // Config errors: an unknown field, a config of another model.
  in = inputs(dir, "wan21/dit_t2v.io.safetensors", "case0.", {"x", "context"}, t, "ok.safetensors");
  std::ofstream(dir + "/unknown.json") << R"({"dim": 256, "num_layer": 2})";
  expect_failure(t2v + " --config " + dir + "/unknown.json --inputs " + in, out, 2, {"unknown config field \"num_layer\""});
  std::ofstream(dir + "/14b.json") << R"({"dim": 5120, "num_heads": 40, "num_layers": 40, "ffn_dim": 13824})";
  expect_failure(t2v + " --config " + dir + "/14b.json --inputs " + in, out, 2, {"dim = 5120", "does not belong to these weights"});

  // Not a DiT, a missing file.
  expect_failure(" --weights " + fixture("wan21/t5.safetensors") + " --inputs " + in, out, 2, {"not a Wan DiT"});
  expect_failure(" --weights " + dir + "/nope.safetensors --inputs " + in, out, 3, {"nope.safetensors"});

  // Nothing was written by any of these.
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().filename().string().find("never"), std::string::npos);
}

TEST(RunComponentDit, InfoShowsTheDitConfig) {
  CliRun r;
  r.rc = test::run(test::x2v_binary() + " info " + fixture("wan21/dit_t2v.safetensors"), &r.out);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("config: model_type t2v, dim 256, ffn_dim 384, num_heads 2 (head_dim 128), num_layers 2, in_dim 16, "
                       "out_dim 16, text_dim 64"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("inferred from the tensor shapes"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace x2v
