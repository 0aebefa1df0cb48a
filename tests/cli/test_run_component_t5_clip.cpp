// `x2v run-component t5 / clip` on the encoder fixtures: outputs match the reference, bad inputs
// fail with a clear message, the right exit code, and no output file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "testutil.h"

namespace x2v {
namespace {

std::string cmd(const std::string& comp, const std::string& weights, const std::string& in, const std::string& out,
                const std::string& extra = "") {
  return test::x2v_binary() + " run-component " + comp + " --weights " + weights + " --inputs " + in + " --output " +
         out + extra + " 2>&1";
}

std::string write(const std::string& dir, const std::string& file, const std::vector<std::pair<std::string, Tensor>>& ts) {
  const std::string path = dir + "/" + file;
  io::write_safetensors(path, ts);
  return path;
}

// meta.json's constructor config of `what`, written as a --config file.
std::string meta_config(const std::string& what) {
  std::ifstream m(test::fixture("wan21/meta.json"));
  const std::string path = test::temp_dir() + "/" + what + "_config.json";
  std::ofstream(path) << nlohmann::json::parse(m).at(what).at("config").dump();
  return path;
}

void expect_failure(const std::string& command, const std::string& out, int rc, const std::string& needle) {
  std::string log;
  EXPECT_EQ(test::run(command, &log), rc) << log;
  EXPECT_NE(log.find(needle), std::string::npos) << "message lacks \"" << needle << "\":\n" << log;
  EXPECT_FALSE(std::filesystem::exists(out));
}

void check_t5(const std::string& weights, const std::string& extra = "") {
  io::SafeTensors fx = io::SafeTensors::open(test::fixture("wan21/t5.io.safetensors"));
  const std::string dir = test::temp_dir(), out = dir + "/out.safetensors";
  const std::string in = write(dir, "in.safetensors", {{"ids", fx.get("ids")}, {"mask", fx.get("mask")}});
  std::string log;
  ASSERT_EQ(test::run(cmd("t5", test::fixture(weights), in, out, extra), &log), 0) << log;
  io::SafeTensors got = io::SafeTensors::open(out);
  ASSERT_EQ(got.tensors().size(), 1u);
  test::expect_close(got.get("out"), fx.get("out"), 1e-4, weights);
}

void check_clip(const std::string& weights) {
  io::SafeTensors fx = io::SafeTensors::open(test::fixture("wan21/clip.io.safetensors"));
  const std::string dir = test::temp_dir(), out = dir + "/out.safetensors";
  const std::string in = write(dir, "in.safetensors", {{"image", fx.get("image")}});
  std::string log;
  ASSERT_EQ(test::run(cmd("clip", test::fixture(weights), in, out, " --config " + meta_config("clip")), &log), 0) << log;
  io::SafeTensors got = io::SafeTensors::open(out);
  ASSERT_EQ(got.tensors().size(), 1u);
  test::expect_close(got.get("out"), fx.get("out"), 1e-4, weights);
}

}  // namespace

TEST(RunComponentT5, FromSafetensors) { check_t5("wan21/t5.safetensors"); }
TEST(RunComponentT5, FromPthWithMetaConfig) { check_t5("wan21/t5.bf16.pth", " --config " + meta_config("t5")); }
TEST(RunComponentClip, FromSafetensors) { check_clip("wan21/clip.safetensors"); }
TEST(RunComponentClip, FromFp16Pth) { check_clip("wan21/clip.fp16.pth"); }

TEST(RunComponentT5, BadInputs) {
  io::SafeTensors fx = io::SafeTensors::open(test::fixture("wan21/t5.io.safetensors"));
  const std::string dir = test::temp_dir(), out = dir + "/out.safetensors", w = test::fixture("wan21/t5.safetensors");
  Tensor ids = fx.get("ids"), mask = fx.get("mask");
  expect_failure(cmd("t5", w, write(dir, "f.safetensors", {{"ids", ids.to(DType::F32)}, {"mask", mask}}), out), out, 2,
                 "must be int64");
  expect_failure(cmd("t5", w, write(dir, "i32.safetensors", {{"ids", ids.to(DType::I32)}, {"mask", mask}}), out), out, 2,
                 "must be int64");
  expect_failure(cmd("t5", w, write(dir, "rank.safetensors", {{"ids", ids.reshape({1, 160})}, {"mask", mask}}), out), out,
                 2, "one dimension");
  expect_failure(cmd("t5", w, write(dir, "nomask.safetensors", {{"ids", ids}}), out), out, 2, "need \"mask\"");
  expect_failure(cmd("t5", w, write(dir, "len.safetensors", {{"ids", ids}, {"mask", mask.slice(0, 100)}}), out), out, 2,
                 "\"mask\" has 100");
  Tensor big = ids.clone();
  big.data<int64_t>()[3] = 100000;
  expect_failure(cmd("t5", w, write(dir, "vocab.safetensors", {{"ids", big}, {"mask", mask}}), out), out, 2,
                 "outside the vocabulary");
  const std::string good = write(dir, "good.safetensors", {{"ids", ids}, {"mask", mask}});
  expect_failure(cmd("t5", test::fixture("wan21/clip.safetensors"), good, out), out, 4, "no T5 encoder");
  const std::string bad_cfg = dir + "/bad.json";
  std::ofstream(bad_cfg) << R"({"num_heads": 8})";
  expect_failure(cmd("t5", w, good, out, " --config " + bad_cfg), out, 2, "num_heads");
}

TEST(RunComponentClip, BadInputs) {
  const std::string dir = test::temp_dir(), out = dir + "/out.safetensors", w = test::fixture("wan21/clip.safetensors");
  expect_failure(cmd("clip", w, write(dir, "c4.safetensors", {{"image", test::random_tensor({4, 20, 20}, 1)}}), out), out, 2,
                 "3 channels");
  expect_failure(cmd("clip", w, write(dir, "r2.safetensors", {{"image", test::random_tensor({20, 20}, 1)}}), out), out, 2,
                 "expected 3 dimensions");
  expect_failure(cmd("clip", w, write(dir, "int.safetensors", {{"image", Tensor::zeros({3, 4, 4}, DType::I64)}}), out),
                 out, 2, "a float tensor is needed");
  expect_failure(cmd("clip", w, write(dir, "none.safetensors", {{"img", test::random_tensor({3, 4, 4}, 1)}}), out), out, 2,
                 "need \"image\"");
  const std::string good = write(dir, "good.safetensors", {{"image", test::random_tensor({3, 30, 30}, 1)}});
  expect_failure(cmd("clip", test::fixture("wan21/t5.safetensors"), good, out), out, 4, "no CLIP vision tower");
}

}  // namespace x2v
