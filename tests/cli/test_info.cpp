// `x2v info`: every fixture weight file is read and its model detected; corrupt and hostile files
// end with a message and a non-zero exit code, never a signal.
#include <fstream>
#include <iterator>
#include <tuple>

#include "../io/pth_builder.h"
#include "testutil.h"

namespace x2v {
namespace {

std::string info(const std::string& path, int* rc) {
  std::string out;
  std::string cmd = "'";
  cmd.append(test::x2v_binary()).append("' info '").append(path).append("'");
  *rc = test::run(cmd, &out);
  return out;
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(CliInfo, FixtureWeightFiles) {
  const std::vector<std::pair<std::string, std::string>> files{
      {"wan21/dit_t2v.safetensors", "model: Wan DiT (WanModel) (official names)"},
      {"wan21/dit_t2v.fp32.safetensors", "model: Wan DiT (WanModel) (official names)"},
      {"wan21/dit_i2v.safetensors", "model_type i2v"},
      {"wan21/dit_t2v.diffusers.safetensors", "(diffusers names)"},
      {"wan21/dit_i2v.diffusers.safetensors", "(diffusers names)"},
      {"wan21/t5.safetensors", "model: umT5-XXL text encoder"},
      {"wan21/t5.bf16.pth", "model: umT5-XXL text encoder"},
      {"wan21/clip.safetensors", "model: CLIP ViT-H/14 vision tower"},
      {"wan21/clip.fp16.pth", "model: CLIP ViT-H/14 vision tower"},
      {"wan21/vae.safetensors", "model: Wan2.1 VAE"},
      {"wan21/vae.fp32.pth", "model: Wan2.1 VAE"},
      {"wan22/vae22.safetensors", "model: Wan2.2 VAE"},
      // The configuration each loader infers (the fixtures' meta.json holds the same values).
      {"wan21/t5.safetensors", "config: vocab 512, dim 64, dim_attn 64, dim_ffn 160, num_heads 4, num_layers 2"},
      {"wan21/clip.fp16.pth", "config: dim 80, image_size 28, patch_size 14, num_layers 3, mlp_dim 320"},
      {"wan21/vae.fp32.pth", "config: Wan2.1 VAE, dim 16, z_dim 16, dim_mult [1, 2, 4, 4], num_res_blocks 2"},
      {"wan22/vae22.safetensors", "config: Wan2.2 VAE, dim 16, dec_dim 24, z_dim 48"},
  };
  for (const auto& [f, expect] : files) {
    SCOPED_TRACE(f);
    int rc = -1;
    const std::string out = info(test::fixture(f), &rc);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find(expect), std::string::npos) << out;
    EXPECT_NE(out.find("parameters: "), std::string::npos) << out;
  }
  int rc = -1;
  EXPECT_NE(info(test::fixture("wan21/vae.fp32.pth"), &rc).find("format: pytorch zip"), std::string::npos);
}

TEST(CliInfo, CorruptFilesFailCleanly) {
  const std::string dir = test::temp_dir();
  std::ifstream in(test::fixture("wan21/t5.bf16.pth"), std::ios::binary);
  const std::string pth((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(pth.size(), 1000u);
  std::ifstream in2(test::fixture("wan21/t5.safetensors"), std::ios::binary);
  const std::string st((std::istreambuf_iterator<char>(in2)), {});
  ASSERT_GT(st.size(), 1000u);
  test::Pickle evil;
  evil.proto().global("os", "system").str("touch " + dir + "/pwned").op(0x85).reduce().stop();

  const std::vector<std::tuple<std::string, std::string, std::string>> files{
      {"garbage.safetensors", "not a model file at all", "not a valid safetensors file"},
      {"truncated.pth", pth.substr(0, pth.size() / 2), "end-of-central-directory"},
      {"truncated.safetensors", st.substr(0, st.size() - 100), "truncated"},
      {"header.safetensors", st.substr(0, 5), "too short"},
      {"evil.pth", test::make_pth(evil.bytes, {}), "malicious"},
      {"empty.safetensors", "", "empty"},
  };
  for (const auto& [name, bytes, needle] : files) {
    SCOPED_TRACE(name);
    const std::string p = dir + "/" + name;
    write_all(p, bytes);
    int rc = -1;
    const std::string out = info(p, &rc);
    EXPECT_GT(rc, 0) << out;
    EXPECT_LT(rc, 128) << "killed by a signal: " << out;
    EXPECT_NE(out.find("x2v: error"), std::string::npos) << out;
    EXPECT_NE(out.find(needle), std::string::npos) << out;
  }
  EXPECT_FALSE(std::ifstream(dir + "/pwned").good());
  int rc = -1;
  const std::string out = info(dir + "/does-not-exist.safetensors", &rc);
  EXPECT_GT(rc, 0);
  EXPECT_LT(rc, 128);
  EXPECT_NE(out.find("does-not-exist"), std::string::npos) << out;
}

}  // namespace
}  // namespace x2v
