// `x2v run-component vae-encode / vae-decode` on the VAE fixtures: outputs match the reference, bad
// inputs fail with a clear message, the right exit code, and no output file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "testutil.h"

namespace x2v {
namespace {

std::string write_inputs(const std::string& dir, const std::string& name, const Tensor& t) {
  const std::string path = dir + "/in_" + name + ".safetensors";
  io::write_safetensors(path, {{name, t}});
  return path;
}

std::string cmd(const std::string& comp, const std::string& weights, const std::string& in, const std::string& out,
                const std::string& extra = "") {
  return test::x2v_binary() + " run-component " + comp + " --weights " + weights + " --inputs " + in + " --output " +
         out + extra + " 2>&1";
}

struct Fixture {
  std::string weights, io;
};

void check_roundtrip(const Fixture& f, const std::string& extra = "") {
  io::SafeTensors fx = io::SafeTensors::open(test::fixture(f.io));
  const std::string dir = test::temp_dir();
  std::string log;
  const std::string enc_out = dir + "/latent.safetensors";
  ASSERT_EQ(test::run(cmd("vae-encode", test::fixture(f.weights), write_inputs(dir, "video", fx.get("video")), enc_out, extra), &log), 0) << log;
  io::SafeTensors got = io::SafeTensors::open(enc_out);
  ASSERT_EQ(got.tensors().size(), 1u);
  test::expect_close(got.get("latent"), fx.get("latent").to(DType::F32), 1e-4, f.io + " latent");

  const std::string dec_out = dir + "/decoded.safetensors";
  ASSERT_EQ(test::run(cmd("vae-decode", test::fixture(f.weights), write_inputs(dir, "z", fx.get("z")), dec_out, extra), &log), 0) << log;
  io::SafeTensors dec = io::SafeTensors::open(dec_out);
  ASSERT_EQ(dec.tensors().size(), 2u);
  test::expect_close(dec.get("decoded"), fx.get("decoded").to(DType::F32), 1e-4, f.io + " decoded");
  test::expect_close(dec.get("decoded_unclamped"), fx.get("decoded_unclamped").to(DType::F32), 1e-4, f.io + " unclamped");
}

// Runs a command that must fail: exit code `rc`, a message containing `needle`, no output file.
void expect_failure(const std::string& command, const std::string& out, int rc, const std::string& needle) {
  std::string log;
  EXPECT_EQ(test::run(command, &log), rc) << log;
  EXPECT_NE(log.find(needle), std::string::npos) << "message lacks \"" << needle << "\":\n" << log;
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace

TEST(RunComponentVae, Wan21FromSafetensors) { check_roundtrip({"wan21/vae.safetensors", "wan21/vae.io.safetensors"}); }

TEST(RunComponentVae, Wan21FromPthWithMetaConfig) {
  std::ifstream m(test::fixture("wan21/meta.json"));
  const std::string cfg = test::temp_dir() + "/vae_config.json";
  std::ofstream(cfg) << nlohmann::json::parse(m).at("vae").at("config").dump();
  check_roundtrip({"wan21/vae.fp32.pth", "wan21/vae.io.safetensors"}, " --config " + cfg);
}

TEST(RunComponentVae, Wan22) { check_roundtrip({"wan22/vae22.safetensors", "wan22/vae22.io.safetensors"}); }

TEST(RunComponentVae, TrailingFramesAreDroppedAsInTheReference) {
  // 15 frames: the reference encodes 1 + 4·3 = 13 of them and ignores the last 2.
  io::SafeTensors fx = io::SafeTensors::open(test::fixture("wan21/vae.io.safetensors"));
  Tensor video = fx.get("video").to(DType::F32);
  Tensor longer = test::random_tensor({3, 15, 32, 48}, 7);
  for (int64_t c = 0; c < 3; ++c) longer[c].slice(0, 13).copy_from(video[c]);
  const std::string dir = test::temp_dir(), out = dir + "/latent.safetensors";
  std::string log;
  ASSERT_EQ(test::run(cmd("vae-encode", test::fixture("wan21/vae.safetensors"), write_inputs(dir, "video", longer), out), &log), 0) << log;
  test::expect_close(io::SafeTensors::open(out).get("latent"), fx.get("latent").to(DType::F32), 1e-4, "15 frames");
}

TEST(RunComponentVae, BadInputsAreClearErrors) {
  const std::string w = test::fixture("wan21/vae.safetensors");
  const std::string dir = test::temp_dir(), out = dir + "/out.safetensors";
  expect_failure(cmd("vae-encode", w, write_inputs(dir, "video", test::random_tensor({4, 5, 32, 48}, 1)), out), out, 2,
                 "RGB video [3, T, H, W]");
  expect_failure(cmd("vae-encode", w, write_inputs(dir, "video", test::random_tensor({3, 5, 36, 48}, 1)), out), out, 2,
                 "multiples of 8");
  expect_failure(cmd("vae-encode", w, write_inputs(dir, "video", test::random_tensor({3, 32, 48}, 1)), out), out, 2,
                 "expected 4 dimensions");
  expect_failure(cmd("vae-encode", w, write_inputs(dir, "z", test::random_tensor({16, 2, 4, 6}, 1)), out), out, 2,
                 "need \"video\"");
  expect_failure(cmd("vae-decode", w, write_inputs(dir, "z", test::random_tensor({48, 2, 4, 6}, 1)), out), out, 2,
                 "takes 16 latent channels");
  // Wan2.2 needs multiples of 16.
  expect_failure(cmd("vae-encode", test::fixture("wan22/vae22.safetensors"),
                     write_inputs(dir, "video", test::random_tensor({3, 5, 40, 48}, 1)), out),
                 out, 2, "multiples of 16");
  // Not a VAE checkpoint, and a config that contradicts the weights.
  expect_failure(cmd("vae-decode", test::fixture("wan21/t5.safetensors"), write_inputs(dir, "z", test::random_tensor({16, 1, 2, 2}, 1)), out),
                 out, 4, "not a Wan VAE");
  const std::string cfg = dir + "/bad.json";
  std::ofstream(cfg) << R"({"dim": 96})";
  expect_failure(cmd("vae-decode", w, write_inputs(dir, "z", test::random_tensor({16, 1, 2, 2}, 1)), out, " --config " + cfg),
                 out, 2, "dim = 96");
}

}  // namespace x2v
