// The Wan2.1 networks other than the DiT on the GPU (bf16 matmul/conv weights, f32 elsewhere),
// against the golden outputs of the official code: T5, CLIP, VAE encode and decode, the long-head
// attention the VAE needs, and whole generations through the pipeline with --device cuda; and, where
// wan22/ is beside wan21/, the Wan2.2 VAE and the TI2V DiT (scalar and per-token timesteps).
//
//   gpu_model_check [FIXTURES_DIR] [--only t5|clip|vae|attention|e2e|wan22]
//
// FIXTURES_DIR holds wan21/ (and wan22/), or is wan21/ itself; default $X2V_FIXTURES. Runs on the GPU machine
// only; not part of CI. One line per comparison ("ok"/"FAIL", relative L2, cosine), then
// "gpu_model_check: N passed, M failed"; exit 1 on any failure, 2 without a CUDA device. Every
// comparison is guarded: an exception is a FAIL line with its message, and the run goes on.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/image.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/wan/clip.h"
#include "models/wan/dit.h"
#include "models/wan/t5.h"
#include "models/wan/vae.h"
#include "ops/cuda/cuda.h"
#include "ops/ops.h"
#include "pipeline/pipeline.h"
#include "pipeline/request.h"
#include "sched/sampler.h"

using namespace x2v;
namespace wan = x2v::models::wan;
namespace fs = std::filesystem;

namespace {

// The bar the fixtures' README sets for bf16 GPU paths.
constexpr double kMaxRelL2 = 2e-2;
constexpr double kMinCosine = 0.999;

int g_pass = 0, g_fail = 0;
std::string g_dir;  // the wan21 folder

std::string fx(const std::string& name) { return g_dir + "/" + name; }

void count(bool ok) { (ok ? g_pass : g_fail)++; }

// Compares on the host in double; a shape mismatch or a non-finite value fails whatever the metrics.
void report(const std::string& what, const Tensor& got, const Tensor& ref, Device want_device = Device::CUDA) {
  const bool shape_ok = got.shape() == ref.shape();
  const bool device_ok = got.device() == want_device;
  double num = 0, den = 0, dot = 0, gg = 0;
  bool finite = true;
  if (shape_ok) {
    const std::vector<float> g = got.to_vector(), r = ref.to_vector();
    for (size_t i = 0; i < g.size(); ++i) {
      if (!std::isfinite(g[i])) finite = false;
      const double d = double(g[i]) - r[i];
      num += d * d;
      den += double(r[i]) * r[i];
      dot += double(g[i]) * r[i];
      gg += double(g[i]) * g[i];
    }
  }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  const double cos = gg > 0 && den > 0 ? dot / std::sqrt(gg * den) : (num == 0 ? 1.0 : 0.0);
  const bool ok = shape_ok && device_ok && finite && rel <= kMaxRelL2 && cos >= kMinCosine;
  std::string why;
  if (!shape_ok) why = "  (shape " + shape_str(got.shape()) + ", expected " + shape_str(ref.shape()) + ")";
  else if (!device_ok) why = std::string("  (on ") + device_name(got.device()) + ", expected " + device_name(want_device) + ")";
  else if (!finite) why = "  (non-finite values)";
  std::printf("%-4s %-48s rel_l2 %.2e  cos %.6f%s\n", ok ? "ok" : "FAIL", what.c_str(), rel, cos, why.c_str());
  std::fflush(stdout);
  count(ok);
}

void guarded(const std::string& what, const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    f();
    cuda::synchronize();
  } catch (const std::exception& e) {
    std::printf("FAIL %-48s threw: %s\n", what.c_str(), e.what());
    count(false);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("     %-48s %.2f s\n", (what + " (time)").c_str(), s);
  std::fflush(stdout);
}

Tensor load_f32(io::SafeTensors& st, const std::string& name) { return st.get(name).to(DType::F32).clone(); }

nlohmann::json meta() {
  std::ifstream in(fx("meta.json"));
  return nlohmann::json::parse(in);
}

// ---------------------------------------------------------------------------------------------

void check_t5() {
  for (const char* file : {"t5.safetensors", "t5.bf16.pth"}) {
    guarded(std::string("t5 ") + file, [&] {
      io::SafeTensors io = io::SafeTensors::open(fx("t5.io.safetensors"));
      Tensor ids = io.get("ids").clone(), mask = io.get("mask").clone();
      wan::T5Encoder t5 = wan::T5Encoder::load(fx(file), {}, wan::ModelLoadOptions::for_device(Device::CUDA));
      // Padded: key mask and position bias through the two-GEMM attention.
      Tensor out = t5.forward(ids, mask);
      report(std::string("t5 ") + file + " out", out, load_f32(io, "out"));
      report(std::string("t5 ") + file + " out_trimmed", wan::T5Encoder::trim(out, mask), load_f32(io, "out_trimmed"));
      // Real tokens only (what encode() runs): no key mask, so the fused attention may take it.
      int64_t real = 0;
      for (float m : mask.to_vector()) real += m != 0.f;
      Tensor r = t5.forward(ids.slice(0, real).clone(), mask.slice(0, real).clone());
      report(std::string("t5 ") + file + " real tokens only", r, load_f32(io, "out_trimmed"));
    });
  }
}

void check_clip() {
  for (const char* file : {"clip.safetensors", "clip.fp16.pth"}) {
    guarded(std::string("clip ") + file, [&] {
      io::SafeTensors io = io::SafeTensors::open(fx("clip.io.safetensors"));
      // The head count is not in the weights: without the fixture's configuration (4 heads) the
      // ViT-H default of 16 applies, a different network (rel L2 0.27 on the CPU as well).
      const wan::EncoderConfigJson cfg =
          wan::EncoderConfigJson::parse(meta().at("clip").at("config").dump(), "meta.json clip.config");
      wan::ClipVisionEncoder clip =
          wan::ClipVisionEncoder::load(fx(file), cfg, wan::ModelLoadOptions::for_device(Device::CUDA));
      Tensor image = load_f32(io, "image");
      report(std::string("clip ") + file + " preprocess (host)", clip.preprocess(image), load_f32(io, "preprocessed"),
             Device::CPU);
      report(std::string("clip ") + file + " forward", clip.forward(load_f32(io, "preprocessed").to(Device::CUDA)),
             load_f32(io, "out"));
      report(std::string("clip ") + file + " encode (host image)", clip.encode(image), load_f32(io, "out"));
    });
  }
}

// A VAE file against its io fixture (video → latent, z → decoded and decoded_unclamped) on the GPU.
void check_vae_io(const std::string& label, const std::string& weights, const std::string& io_path) {
  guarded(label, [&] {
    io::SafeTensors io = io::SafeTensors::open(io_path);
    wan::WanVAE vae = wan::WanVAE::load(weights, "", wan::ModelLoadOptions::for_device(Device::CUDA));
    report(label + " encode (video on host)", vae.encode(load_f32(io, "video")), load_f32(io, "latent"));
    report(label + " encode (video on device)", vae.encode(load_f32(io, "video").to(Device::CUDA)),
           load_f32(io, "latent"));
    Tensor unclamped;
    Tensor decoded = vae.decode(load_f32(io, "z").to(Device::CUDA), &unclamped);
    report(label + " decode", decoded, load_f32(io, "decoded"));
    report(label + " decode unclamped", unclamped, load_f32(io, "decoded_unclamped"));
  });
}

void check_vae() {
  for (const char* file : {"vae.safetensors", "vae.fp32.pth"})
    check_vae_io(std::string("vae ") + file, fx(file), fx("vae.io.safetensors"));
}

// Attention shapes beyond the fixtures' tiny VAE: the real VAE's single 384-wide head, and scores
// too many for one pass (queries chunked), against the CPU reference on the same bf16-exact inputs.
Tensor bf16_random(const Shape& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Tensor t = Tensor::empty(s, DType::F32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = round_bf16(u(rng));
  return t;
}

void check_attention() {
  struct Case {
    int64_t Lq, Lk, H, D;
    bool mask;
  };
  // The VAE middle block at 480p (6240 pixels, one pass) and 720p (14400: 207M scores, four query
  // chunks); a long head with a key mask; many scores with a key mask (chunked, small head).
  for (const Case& c : {Case{6240, 6240, 1, 384, false}, Case{14400, 14400, 1, 384, false},
                        Case{700, 900, 2, 320, true}, Case{9000, 8000, 1, 8, true}}) {
    const std::string name = "attention Lq" + std::to_string(c.Lq) + " Lk" + std::to_string(c.Lk) + " H" +
                             std::to_string(c.H) + " D" + std::to_string(c.D) + (c.mask ? " mask" : "");
    guarded(name, [&] {
      Tensor q = bf16_random({c.Lq, c.H, c.D}, 1), k = bf16_random({c.Lk, c.H, c.D}, 2), v = bf16_random({c.Lk, c.H, c.D}, 3);
      Tensor mask;
      if (c.mask) {
        std::vector<float> m(static_cast<size_t>(c.Lk), 1.f);
        for (size_t j = 0; j < m.size(); j += 3) m[j] = 0.f;
        mask = Tensor::from_f32(m, {c.Lk});
      }
      const float scale = 1.f / std::sqrt(static_cast<float>(c.D));
      Tensor ref = ops::attention(q, k, v, scale, Tensor(), mask);
      Tensor got = ops::attention(q.to(Device::CUDA), k.to(Device::CUDA), v.to(Device::CUDA), scale, Tensor(),
                                  mask.defined() ? mask.to(Device::CUDA) : Tensor());
      report(name, got, ref);
    });
  }
  guarded("attention own kernel refuses head dim 384", [&] {
    Tensor q = bf16_random({16, 1, 384}, 4).to(Device::CUDA);
    try {
      ops::cuda::attention_with(ops::cuda::AttnImpl::Own, q, q, q, 1.f, Tensor(), Tensor());
      std::printf("FAIL %-48s no error\n", "attention own kernel refuses head dim 384");
      count(false);
    } catch (const Error& e) {
      const bool ok = e.kind() == ErrorKind::Unsupported && std::string(e.what()).find("256") != std::string::npos;
      std::printf("%-4s %-48s %s\n", ok ? "ok" : "FAIL", "attention own kernel refuses head dim 384", e.what());
      count(ok);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Whole generations: the pipeline as `x2v generate --device cuda` runs it, with the fixtures'
// stand-ins for the encoders' outputs and the initial noise.

std::string dit_config(const nlohmann::json& m, const std::string& dit, const std::string& dir) {
  const std::string path = dir + "/" + dit + ".config.json";
  std::ofstream(path) << m.at(dit).at("config").dump();
  return path;
}

void check_e2e(const std::string& tmp) {
  const nlohmann::json m = meta();
  for (const char* name : {"e2e_t2v", "e2e_t2v_dpm", "e2e_i2v"}) {
    guarded(std::string("generate ") + name, [&] {
      const nlohmann::json& e = m.at(name);
      const std::string io = fx(std::string(name) + ".io.safetensors");
      const std::string dit = e.at("dit").get<std::string>();
      pipeline::GenerateRequest r;
      r.model.dit = fx(dit + ".safetensors");
      r.model.dit_config = dit_config(m, dit, tmp);
      r.model.vae = fx(e.at("vae").get<std::string>() + ".safetensors");
      r.text_embeddings = io;
      r.noise = io;
      r.frames = e.at("frames").get<int>();
      r.steps = e.at("steps").get<int>();
      r.shift = e.at("shift").get<double>();
      r.guide_scale = e.at("guide_scale").get<double>();
      r.solver = sched::parse_solver(e.at("solver").get<std::string>());
      r.seed = 0;
      r.device = Device::CUDA;
      // resolve() wants somewhere to write; the comparison below reads res.video, not this file.
      r.output_tensor = tmp + "/" + name + ".safetensors";
      if (dit == "dit_i2v") {
        r.task = pipeline::Task::I2V;
        r.max_area = e.at("max_area").get<int64_t>();
        r.clip_embeddings = io;
        r.image = tmp + "/" + name + ".png";
        io::write_png(r.image, io::SafeTensors::open(io).get("image_u8_hwc").clone());
      } else {
        r.width = e.at("size_wh")[0].get<int>();
        r.height = e.at("size_wh")[1].get<int>();
      }
      pipeline::GenerateResult res = pipeline::generate(pipeline::resolve(r));
      io::SafeTensors st = io::SafeTensors::open(io);
      report(std::string("generate ") + name + " video", res.video, load_f32(st, "video"), Device::CPU);
    });
  }
}

// Wan2.2: the VAE (48 latent channels, patchified, avg-down / dup-up shortcuts) and the TI2V DiT.
void check_wan22(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir + "/meta.json", ec)) {
    std::printf("skip wan22: %s/meta.json not found\n", dir.c_str());
    return;
  }
  check_vae_io("wan22 vae", dir + "/vae22.safetensors", dir + "/vae22.io.safetensors");
  const auto opt = wan::ModelLoadOptions::for_device(Device::CUDA);
  guarded("wan22 dit_ti2v", [&] {
    std::ifstream mf(dir + "/meta.json");
    const nlohmann::json m = nlohmann::json::parse(mf);
    wan::DitModel model = wan::DitModel::load(dir + "/dit_ti2v.safetensors", "", opt);
    io::SafeTensors io = io::SafeTensors::open(dir + "/dit_ti2v.io.safetensors");
    wan::DitInputs in;
    in.x = load_f32(io, "x").to(Device::CUDA);
    in.context = load_f32(io, "context").to(Device::CUDA);
    in.t = Tensor::from_f32({m.at("dit_ti2v").at("timestep").get<float>()}, {1});
    report("wan22 dit_ti2v scalar t", model.forward(in), load_f32(io, "out_scalar_t"));
    in.t = load_f32(io, "t_per_token");
    report("wan22 dit_ti2v per-token t", model.forward(in), load_f32(io, "out_token_t"));
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (!cuda::available()) {
    std::printf("no CUDA device: nothing to check\n");
    return 2;
  }
  std::string dir = std::getenv("X2V_FIXTURES") ? std::getenv("X2V_FIXTURES") : "", only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--only" && i + 1 < argc) only = argv[++i];
    else if (a == "-h" || a == "--help") {
      std::printf("usage: gpu_model_check [FIXTURES_DIR] [--only t5|clip|vae|attention|e2e|wan22]\n");
      return 0;
    } else dir = a;
  }
  std::error_code ec;
  if (fs::is_regular_file(dir + "/wan21/meta.json", ec)) g_dir = dir + "/wan21";
  else if (fs::is_regular_file(dir + "/meta.json", ec)) g_dir = dir;
  if (g_dir.empty()) {
    std::printf("gpu_model_check: no fixtures: pass the folder that holds wan21/ (e.g. ../shared/fixtures) or set "
                "X2V_FIXTURES\n");
    return 2;
  }
  std::printf("device: %s, cuDNN %d, fixtures %s\n", cuda::device_description().c_str(), ops::cuda::cudnn_version(),
              g_dir.c_str());
  const fs::path tmp = fs::temp_directory_path() / ("gpu_model_check." + std::to_string(::getpid()));
  fs::create_directories(tmp, ec);
  auto want = [&](const char* f) { return only.empty() || only == f; };
  if (want("t5")) check_t5();
  if (want("clip")) check_clip();
  if (want("vae")) check_vae();
  if (want("attention")) check_attention();
  if (want("e2e")) check_e2e(tmp.string());
  if (want("wan22")) check_wan22(fs::path(g_dir).parent_path().string() + "/wan22");
  fs::remove_all(tmp, ec);
  std::printf("gpu_model_check: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
