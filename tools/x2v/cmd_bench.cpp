// x2v bench: timings on the GPU, one JSON object per line on stdout (a readable line per result on
// stderr). What it times:
//   gemm  — cuBLASLt bf16 GEMMs at the Wan DiT shapes (the ceiling the DiT's linears run at);
//   attn  — attention at the DiT shapes: cuDNN's fused kernel, the own Hopper flash kernel (also with every
//           query tile run whole, "flash-whole", and with no query tiles paired, "flash-single"), the
//           general kernel;
//   dit   — one DiT forward (wan2.1-1.3b / wan2.1-14b, 480p / 720p, 512 text tokens, CFG off and on)
//           through models::wan::DitModel, with random weights made on the GPU;
//   conv  — cuDNN conv3d at the Wan VAE decoder's shapes;
//   vae   — the Wan2.1 VAE decode (21-frame latent) and encode (81 frames) through models::wan::WanVAE;
//   t5    — the umT5-XXL encoder on 512 tokens through models::wan::T5Encoder.
// Every timing is a median over repetitions, measured with CUDA events after a warm-up.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "core/error.h"
#ifdef X2V_WITH_CUDA
#include <map>
#include <optional>

#include "io/weights.h"
#include "models/wan/dit.h"
#include "models/wan/load_options.h"
#include "models/wan/t5.h"
#include "models/wan/vae.h"
#include "ops/cuda/cuda.h"
#include "ops/ops.h"
#include "pipeline/demo.h"
#endif

namespace x2v::cli {
namespace {

struct BenchOptions {
  std::string what = "gemm,attn,dit,conv";
  std::string models = "1.3b,14b";
  std::string res = "480p,720p";
  int reps = 3;
  int layers = 0;  // 0 = the model's own count
  std::string tag;
  std::string attn = "auto";  // the attention the models use: auto, cudnn, flash
  double sustain = 0;         // seconds of the same work before each timing (see time_ms)
};

#ifdef X2V_WITH_CUDA

bool has(const std::string& list, const std::string& item) {
  std::stringstream ss(list);
  std::string s;
  while (std::getline(ss, s, ','))
    if (s == item || s == "all") return true;
  return false;
}

using ops::Act;
namespace oc = ops::cuda;

std::string g_device;
std::string g_tag;
std::string g_attn;

void emit(nlohmann::json j) {
  j["device"] = g_device;
  if (!g_tag.empty()) j["tag"] = g_tag;
  if (!g_attn.empty() && j["bench"] != "attn") j["attn"] = g_attn;
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Median milliseconds of `f` over `reps` runs after one warm-up. With --sustain S (sustain_s), the
// warm-up repeats `f` for S seconds first: an H100 holds its boost clock for the first tens of
// milliseconds of load and then settles at its power limit (700 W, about 1.5 GHz for the DiT's GEMMs
// and attention), so short kernels timed cold read faster than they run inside a whole forward.
double time_ms(int reps, double sustain_s, const std::function<void()>& f) {
  cuda::Timer t;
  f();
  cuda::synchronize();
  for (auto t0 = std::chrono::steady_clock::now();
       std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < sustain_s;) {
    f();
    cuda::synchronize();
  }
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    t.start();
    f();
    ms.push_back(t.stop_ms());
  }
  return median(ms);
}

Tensor rnd(const Shape& s, DType dt, uint64_t seed, float a) {
  Tensor t = Tensor::empty(s, dt, Device::CUDA);
  cuda::fill_uniform(t, seed, -a, a);
  return t;
}

// ---- GEMM ceilings
void bench_gemm(const BenchOptions& o) {
  struct G {
    const char* name;
    int64_t M, K, N;
  };
  // "qkv fused": the three self-attention projections as one GEMM over the concatenated weights.
  const std::vector<G> gs = {{"14b qkvo/cross 480p", 32760, 5120, 5120}, {"14b qkv fused 480p", 32760, 5120, 15360},
                             {"14b ffn_up 480p", 32760, 5120, 13824},    {"14b ffn_down 480p", 32760, 13824, 5120},
                             {"1.3b qkvo 480p", 32760, 1536, 1536},      {"1.3b qkv fused 480p", 32760, 1536, 4608},
                             {"1.3b ffn_up 480p", 32760, 1536, 8960},    {"1.3b ffn_down 480p", 32760, 8960, 1536},
                             {"square 8192", 8192, 8192, 8192}};
  for (const G& g : gs) {
    Tensor x = rnd({g.M, g.K}, DType::BF16, 1, 1.f), w = rnd({g.N, g.K}, DType::BF16, 2, 0.02f);
    Tensor b = rnd({g.N}, DType::BF16, 3, 0.1f);
    for (int variant = 0; variant < 3; ++variant) {
      // Every linear of the DiT has a bias; the FFN's first one also the tanh-GELU.
      if (variant == 2 && std::string(g.name).find("ffn_up") == std::string::npos) continue;
      const Act act = variant == 2 ? Act::GeluTanh : Act::None;
      const bool bias = variant >= 1;
      double ms = time_ms(o.reps + 2, o.sustain, [&] { oc::linear(x, w, bias ? b : Tensor(), act, DType::BF16); });
      const double tf = 2.0 * g.M * g.K * g.N / (ms * 1e-3) / 1e12;
      std::string nm = std::string(g.name) + (variant == 1 ? " +bias" : variant == 2 ? " +bias+gelu" : "");
      std::fprintf(stderr, "gemm  %-32s M%-6lld K%-6lld N%-6lld %8.3f ms %6.0f TFLOP/s\n", nm.c_str(),
                   (long long)g.M, (long long)g.K, (long long)g.N, ms, tf);
      emit({{"bench", "gemm"}, {"name", nm}, {"M", g.M}, {"K", g.K}, {"N", g.N}, {"ms", ms}, {"tflops", tf}});
    }
  }
}

// ---- attention
void bench_attn(const BenchOptions& o) {
  struct A {
    const char* name;
    int64_t Lq, Lk, H;
    bool own;
  };
  const std::vector<A> as = {{"14b self 480p", 32760, 32760, 40, true}, {"14b cross 480p", 32760, 512, 40, true},
                             {"1.3b self 480p", 32760, 32760, 12, false}, {"14b self 720p", 75600, 75600, 40, false},
                             {"1.3b cross 480p", 32760, 512, 12, false}};
  const int64_t D = 128;
  for (const A& a : as) {
    Tensor q = rnd({a.Lq, a.H, D}, DType::BF16, 11, 2.f), k = rnd({a.Lk, a.H, D}, DType::BF16, 12, 2.f),
           v = rnd({a.Lk, a.H, D}, DType::BF16, 13, 1.f);
    const double flop = 4.0 * a.Lq * a.Lk * a.H * D;
    auto with = [&](oc::AttnImpl impl) {
      return [&q, &k, &v, impl] { oc::attention_with(impl, q, k, v, 0.0884f, {}, {}); };
    };
    auto flash_with = [&](oc::FlashOptions opt) {
      return [&q, &k, &v, opt] {
        Tensor out;
        std::string why;
        if (!oc::flash_attention(q, k, v, 0.0884f, &out, &why, opt)) fail(ErrorKind::Unsupported, why);
      };
    };
    struct Impl {
      const char* name;
      std::function<void()> run;
      bool slow;  // the general kernel: timed once, and only at the shapes marked `own`
    };
    const Impl impls[] = {
        {"cudnn", with(oc::AttnImpl::Cudnn), false},
        {"flash", with(oc::AttnImpl::Flash), false},
        // The flash kernel with every query tile run whole, without the split of its last, partly full
        // round of CTAs: what the split is worth.
        {"flash-whole", flash_with({1}), false},
        // Every query tile in a CTA of its own: what sharing K/V loads between pairs is worth.
        {"flash-single", flash_with({0, false}), false},
        {"own", with(oc::AttnImpl::Own), true}};
    for (const Impl& im : impls) {
      if (im.slow && !a.own) continue;
      double ms;
      try {
        ms = time_ms(im.slow ? 1 : o.reps + 2, o.sustain, im.run);
      } catch (const Error& e) {
        std::fprintf(stderr, "attn  %-20s %s: %s\n", a.name, im.name, e.what());
        emit({{"bench", "attn"}, {"name", a.name}, {"impl", im.name}, {"error", e.what()}});
        continue;
      }
      const double tf = flop / (ms * 1e-3) / 1e12;
      std::fprintf(stderr, "attn  %-20s %-11s Lq%-6lld Lk%-6lld H%-3lld %9.3f ms %6.0f TFLOP/s\n", a.name, im.name,
                   (long long)a.Lq, (long long)a.Lk, (long long)a.H, ms, tf);
      emit({{"bench", "attn"}, {"name", a.name}, {"impl", im.name}, {"Lq", a.Lq}, {"Lk", a.Lk}, {"H", a.H}, {"D", D},
            {"ms", ms}, {"tflops", tf}});
    }
  }
}

// ---- Random weights made on the GPU for the real model code: a WeightStore over a model's tensor
// list (pipeline/demo.h, the names and shapes the reference registers) whose tensors are drawn on the
// device when loaded. Matrices bf16 ~ U(±1/√fan_in), norm gains U(0.9, 1.1), biases and modulation
// small, so activations stay in range through 40 blocks and the timings see realistic values.
class RandomWeights final : public io::WeightStore {
 public:
  RandomWeights(pipeline::TensorShapes shapes, std::string label, uint64_t seed)
      : label_(std::move(label)), seed_(seed) {
    for (auto& [n, s] : shapes) shapes_.emplace(n, s);
  }
  std::string format() const override { return "random (made on the GPU)"; }
  std::string source() const override { return label_; }
  std::vector<std::string> names() const override {
    std::vector<std::string> v;
    for (const auto& [n, s] : shapes_) v.push_back(n);
    return v;
  }
  std::optional<io::TensorMeta> find(const std::string& name) const override {
    auto it = shapes_.find(name);
    if (it == shapes_.end()) return std::nullopt;
    return io::TensorMeta{it->second.size() >= 2 ? DType::BF16 : DType::F32, it->second};
  }
  Tensor load(const std::string& name) const override {
    const io::TensorMeta m = meta(name);
    Tensor t = Tensor::empty(m.shape, m.dtype, Device::CUDA);
    const uint64_t seed = seed_ + std::hash<std::string>{}(name);
    const auto ends = [&](const char* suf) { return name.ends_with(suf); };
    const bool gain = (m.shape.size() == 1 && !ends(".bias")) || ends("gamma");
    if (gain) {
      cuda::fill_uniform(t, seed, 0.9f, 1.1f);
    } else if (ends(".bias") || name.find("modulation") != std::string::npos) {
      cuda::fill_uniform(t, seed, -0.05f, 0.05f);
    } else {
      const float a = 1.f / std::sqrt(static_cast<float>(t.numel() / m.shape[0]));
      cuda::fill_uniform(t, seed, -a, a);
    }
    return t;
  }

 private:
  std::map<std::string, Shape> shapes_;
  std::string label_;
  uint64_t seed_;
};

bool finite(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}
double gib(size_t b) { return static_cast<double>(b) / (1 << 30); }

// ---- DiT forward through the model code (models::wan::DitModel, wan-spec §1.2–1.6) with random
// weights laid out as its CUDA loader lays them out (matmul weights bf16, the rest f32).
void bench_dit(const BenchOptions& o) {
  struct M {
    const char* name;
    int64_t d, ffn, heads, layers;
  };
  struct R {
    const char* name;
    int64_t F, H, W;  // latent
  };
  const std::vector<M> ms = {{"wan2.1-1.3b", 1536, 8960, 12, 30}, {"wan2.1-14b", 5120, 13824, 40, 40}};
  const std::vector<R> rs = {{"480p", 21, 60, 104}, {"720p", 21, 90, 160}};
  for (const M& mm : ms) {
    if (!has(o.models, std::string(mm.name).substr(7))) continue;
    cuda::empty_cache();
    cuda::reset_peak();
    const int64_t layers = o.layers > 0 ? o.layers : mm.layers;
    pipeline::DitShapeConfig sc;
    sc.dim = mm.d, sc.ffn_dim = mm.ffn, sc.num_heads = mm.heads, sc.num_layers = layers, sc.text_dim = 4096;
    models::wan::DitConfig cfg;
    cfg.model_type = "t2v";
    cfg.dim = mm.d, cfg.ffn_dim = mm.ffn, cfg.num_heads = mm.heads, cfg.num_layers = layers;
    cfg.in_dim = 16, cfg.out_dim = 16, cfg.text_dim = 4096, cfg.freq_dim = 256, cfg.text_len = 512;
    models::wan::DitLoadOptions opt;
    opt.device = Device::CUDA;
    opt.matmul_dtype = DType::BF16;
    RandomWeights store(pipeline::wan_dit_shapes(sc), mm.name, 1000);
    models::wan::DitModel model(cfg, models::wan::load_dit_weights(store, cfg, opt));
    cuda::synchronize();
    const size_t weights_bytes = cuda::mem_stats().in_use;
    Tensor text = rnd({512, 4096}, DType::BF16, 77, 1.f), text_neg = rnd({512, 4096}, DType::BF16, 78, 1.f);
    for (const R& r : rs) {
      if (!has(o.res, r.name)) continue;
      Tensor lat = rnd({16, r.F, r.H, r.W}, DType::F32, 99, 1.f);
      const int64_t L = r.F * (r.H / 2) * (r.W / 2);
      const Tensor t = Tensor::scalar_f32(999.f);
      cuda::reset_peak();
      Tensor out;
      double fwd, cfg_ms, context_ms;
      size_t steady_mallocs = 0;  // cudaMalloc calls during the timed forwards (the cache should serve all)
      try {
        // One forward as a sampler step runs it: the context embedding (the text MLP and every block's
        // cross-attention keys and values) is shared by all steps, so it is made once per prompt, as
        // the pipeline does, and timed on its own.
        context_ms = time_ms(o.reps, 0, [&] { model.embed_context(text); });
        const auto ctx = model.embed_context(text), ctx_neg = model.embed_context(text_neg);
        out = model.forward(lat, Tensor(), t, ctx);  // warm: plans made, the cache filled
        const size_t mallocs = cuda::mem_stats().cudamalloc_calls;
        fwd = time_ms(o.reps, o.sustain, [&] { out = model.forward(lat, Tensor(), t, ctx); });
        steady_mallocs = cuda::mem_stats().cudamalloc_calls - mallocs;
        cfg_ms = time_ms(std::max(1, o.reps - 1), o.sustain, [&] {
          Tensor c = model.forward(lat, Tensor(), t, ctx), u = model.forward(lat, Tensor(), t, ctx_neg);
          out = ops::axpby(u, 1.f - 5.f, c, 5.f);
        });
      } catch (const Error& e) {
        std::fprintf(stderr, "dit   %s %s: %s\n", mm.name, r.name, e.what());
        emit({{"bench", "dit"}, {"model", mm.name}, {"res", r.name}, {"error", e.what()}});
        continue;
      }
      cuda::MemStats st = cuda::mem_stats();
      const bool ok = finite(out);
      // The forward's matmuls: q, k, v, o and the cross-attention's q, o over the L tokens, and the
      // FFN (the text's keys and values are the context's).
      const double lin_flop = (8.0 * L * mm.d * mm.d + 4.0 * L * mm.d * mm.d + 4.0 * L * mm.d * mm.ffn) * layers;
      const double attn_flop = (4.0 * L * L * mm.d + 4.0 * L * 512 * mm.d) * layers;
      std::fprintf(stderr,
                   "dit   %-12s %-5s L=%-6lld layers %-3lld forward %8.1f ms  CFG(2 fwd) %8.1f ms  peak %.2f GiB "
                   "(weights %.2f GiB)  context %.1f ms  %s\n",
                   mm.name, r.name, (long long)L, (long long)layers, fwd, cfg_ms, gib(st.peak_in_use),
                   gib(weights_bytes), context_ms, ok ? "finite" : "NON-FINITE OUTPUT");
      emit({{"bench", "dit"}, {"model", mm.name}, {"res", r.name}, {"tokens", L}, {"text_tokens", 512},
            {"layers", layers}, {"layers_fraction", static_cast<double>(layers) / mm.layers}, {"forward_ms", fwd},
            {"cfg_ms", cfg_ms}, {"context_ms", context_ms}, {"peak_gib", gib(st.peak_in_use)},
            {"peak_reserved_gib", gib(st.peak_reserved)},
            {"weights_gib", gib(weights_bytes)}, {"tflops_effective", (lin_flop + attn_flop) / (fwd * 1e-3) / 1e12},
            {"output_finite", ok}, {"cudamalloc_calls_timed", steady_mallocs}, {"code", "models::wan::DitModel"}});
    }
  }
  cuda::empty_cache();
}

// ---- The Wan2.1 VAE (models::wan::WanVAE, wan-spec §5) with random weights made on the GPU: decode
// of a 21-frame latent and encode of the 81-frame video, in the reference's chunked causal schedule.
void bench_vae(const BenchOptions& o) {
  struct R {
    const char* name;
    int64_t T, h, w;  // latent
  };
  pipeline::VaeShapeConfig sc;
  sc.dim = 96;  // the released Wan2.1 VAE
  cuda::empty_cache();
  RandomWeights store(pipeline::wan_vae_shapes(sc), "wan2.1 vae", 9000);
  const models::wan::VaeConfig cfg = models::wan::resolve_vae_config({}, store);
  models::wan::WanVAE vae = models::wan::WanVAE::load(store, cfg, models::wan::ModelLoadOptions::for_device(Device::CUDA));
  cuda::synchronize();
  const size_t wbytes = cuda::mem_stats().in_use;
  for (const R& r : {R{"480p", 21, 60, 104}, R{"720p", 21, 90, 160}}) {
    if (!has(o.res, r.name)) continue;
    Tensor z = rnd({16, r.T, r.h, r.w}, DType::F32, 31, 1.f);
    const int64_t frames = 1 + 4 * (r.T - 1);
    for (const char* dir : {"decode", "encode"}) {
      const bool dec = dir[0] == 'd';
      Tensor in = dec ? z : rnd({3, frames, 8 * r.h, 8 * r.w}, DType::F32, 32, 1.f);
      Tensor out;
      double ms;
      try {
        // A first run outside the peak: each conv shape's algorithm is chosen on first use, timing
        // candidates with a scratch buffer the steady state does not hold.
        (dec ? vae.decode(in) : vae.encode(in));
        cuda::synchronize();
        cuda::empty_cache();
        cuda::reset_peak();
        ms = time_ms(std::max(1, o.reps - 1), o.sustain, [&] {
          out = Tensor();  // the previous result is not part of the next run's peak
          out = dec ? vae.decode(in) : vae.encode(in);
        });
      } catch (const Error& e) {
        std::fprintf(stderr, "vae   %s %s: %s\n", dir, r.name, e.what());
        emit({{"bench", std::string("vae_") + dir}, {"res", r.name}, {"error", e.what()}});
        continue;
      }
      const cuda::MemStats st = cuda::mem_stats();
      // Everything x2v held on the device at the worst moment: weights, input, output, activations,
      // caches and the cuBLAS/cuDNN scratch.
      const double peak = gib(st.peak_in_use);
      const bool ok = finite(out);
      std::fprintf(stderr, "vae   %s %-5s %s -> %s: %8.1f ms  peak %.2f GiB (weights %.2f, input %.2f, output %.2f GiB)  %s\n",
                   dir, r.name, shape_str(in.shape()).c_str(), shape_str(out.shape()).c_str(), ms, peak, gib(wbytes),
                   gib(in.nbytes()), gib(out.nbytes()), ok ? "finite" : "NON-FINITE OUTPUT");
      emit({{"bench", std::string("vae_") + dir}, {"res", r.name}, {"latent", {r.T, r.h, r.w}}, {"frames", frames},
            {"ms", ms}, {"peak_gib", peak}, {"weights_gib", gib(wbytes)}, {"input_gib", gib(in.nbytes())},
            {"output_gib", gib(out.nbytes())}, {"output_finite", ok}, {"code", "models::wan::WanVAE"}});
    }
  }
  cuda::empty_cache();
}

// ---- The umT5-XXL text encoder (models::wan::T5Encoder, wan-spec §3.1) with random weights made on
// the GPU, 512 tokens (the pipelines' padded length).
void bench_t5(const BenchOptions& o) {
  pipeline::T5ShapeConfig sc;
  sc.vocab = 256384, sc.dim = 4096, sc.dim_attn = 4096, sc.dim_ffn = 10240, sc.num_heads = 64;
  sc.num_layers = o.layers > 0 ? o.layers : 24;
  cuda::empty_cache();
  RandomWeights store(pipeline::wan_t5_shapes(sc), "umt5-xxl", 7000);
  models::wan::T5Encoder t5(store, models::wan::infer_t5_config(store),
                            models::wan::ModelLoadOptions::for_device(Device::CUDA));
  cuda::synchronize();
  const size_t wbytes = cuda::mem_stats().in_use;
  const int64_t L = 512;
  std::vector<int64_t> ids(L), mask(L, 1);
  for (int64_t i = 0; i < L; ++i) ids[static_cast<size_t>(i)] = (i * 7919 + 13) % sc.vocab;
  Tensor tid = Tensor::empty({L}, DType::I64), tmask = Tensor::empty({L}, DType::I64);
  std::copy(ids.begin(), ids.end(), tid.data<int64_t>());
  std::copy(mask.begin(), mask.end(), tmask.data<int64_t>());
  Tensor out;
  cuda::reset_peak();
  double ms;
  try {
    ms = time_ms(o.reps + 2, o.sustain, [&] { out = t5.forward(tid, tmask); });
  } catch (const Error& e) {
    std::fprintf(stderr, "t5    %s\n", e.what());
    emit({{"bench", "t5"}, {"error", e.what()}});
    return;
  }
  const cuda::MemStats st = cuda::mem_stats();
  const bool ok = finite(out);
  std::fprintf(stderr, "t5    umt5-xxl encoder, %lld layers, %lld tokens: %8.2f ms  peak %.2f GiB (weights %.2f GiB)  %s\n",
               (long long)sc.num_layers, (long long)L, ms, gib(st.peak_in_use), gib(wbytes),
               ok ? "finite" : "NON-FINITE OUTPUT");
  emit({{"bench", "t5"}, {"layers", sc.num_layers}, {"tokens", L}, {"ms", ms}, {"peak_gib", gib(st.peak_in_use)},
        {"weights_gib", gib(wbytes)}, {"output_finite", ok}, {"code", "models::wan::T5Encoder"}});
  cuda::empty_cache();
}

// ---- conv3d at the VAE decoder's shapes (one latent-frame chunk and its upsampled sizes)
void bench_conv(const BenchOptions& o) {
  struct Cv {
    const char* name;
    int64_t C, T, H, W, O;
  };
  const std::vector<Cv> cs = {{"dec 384ch 60x104", 384, 4, 60, 104, 384},
                              {"dec 384ch 120x208", 384, 4, 120, 208, 384},
                              {"dec 192ch 240x416", 192, 4, 240, 416, 192},
                              {"dec 96ch 480x832", 96, 4, 480, 832, 96}};
  for (const Cv& c : cs)
    for (DType dt : {DType::BF16, DType::F32}) {
      Tensor x = rnd({c.C, c.T, c.H, c.W}, dt, 5, 1.f), w = rnd({c.O, c.C, 3, 3, 3}, dt, 6, 0.05f);
      Tensor b = rnd({c.O}, DType::F32, 7, 0.1f);
      double ms;
      try {
        ms = time_ms(o.reps, o.sustain, [&] { oc::conv3d(x, w, b, {1, 1, 1}, {2, 0, 1, 1, 1, 1}); });
      } catch (const Error& e) {
        std::fprintf(stderr, "conv  %-20s %s: %s\n", c.name, dtype_name(dt), e.what());
        emit({{"bench", "conv3d"}, {"name", c.name}, {"dtype", dtype_name(dt)}, {"error", e.what()}});
        continue;
      }
      const double flop = 2.0 * c.O * c.C * 27 * c.T * c.H * c.W;
      const double tf = flop / (ms * 1e-3) / 1e12;
      std::fprintf(stderr, "conv  %-20s %-4s %8.3f ms %6.1f TFLOP/s\n", c.name, dtype_name(dt), ms, tf);
      emit({{"bench", "conv3d"}, {"name", c.name}, {"dtype", dtype_name(dt)}, {"C", c.C}, {"T", c.T}, {"H", c.H},
            {"W", c.W}, {"O", c.O}, {"k", 3}, {"ms", ms}, {"tflops", tf}});
    }
}

int run_bench(const BenchOptions& o) {
  if (!cuda::available())
    fail(ErrorKind::Device, "x2v bench needs a CUDA device; none is visible (check the driver and CUDA_VISIBLE_DEVICES)");
  g_device = cuda::device_description();
  g_tag = o.tag;
  g_attn = o.attn;
  oc::set_attention_impl(o.attn == "cudnn" ? oc::AttnImpl::Cudnn
                         : o.attn == "flash" ? oc::AttnImpl::Flash
                                             : oc::AttnImpl::Auto);
  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  emit({{"bench", "start"}, {"date", date}, {"what", o.what}, {"reps", o.reps}, {"sustain_s", o.sustain}});
  if (has(o.what, "gemm")) bench_gemm(o);
  if (has(o.what, "attn")) bench_attn(o);
  if (has(o.what, "dit")) bench_dit(o);
  if (has(o.what, "conv")) bench_conv(o);
  if (has(o.what, "vae")) bench_vae(o);
  if (has(o.what, "t5")) bench_t5(o);
  return 0;
}

#else

int run_bench(const BenchOptions&) {
  fail(ErrorKind::Unsupported, "x2v bench times the CUDA backend; this build has none (build with the cuda preset)");
}

#endif

Register reg({"bench", "GPU timings as JSON lines: GEMM and attention ceilings, DiT forward, VAE convolutions",
              [](CLI::App& sub) -> std::function<int()> {
                auto o = std::make_shared<BenchOptions>();
                sub.add_option("--what", o->what, "comma list of gemm, attn, dit, conv, vae, t5 (or all)");
                sub.add_option("--models", o->models, "DiT sizes: 1.3b, 14b");
                sub.add_option("--res", o->res, "resolutions: 480p, 720p");
                sub.add_option("--reps", o->reps, "timed repetitions (median reported)")->check(CLI::Range(1, 100));
                sub.add_option("--sustain", o->sustain,
                               "seconds of the same work before each timing, so clocks settle at the power limit")
                    ->check(CLI::Range(0.0, 60.0));
                sub.add_option("--layers", o->layers, "blocks to run (0 = the model's count)");
                sub.add_option("--tag", o->tag, "a label copied into every JSON line");
                sub.add_option("--attn", o->attn, "attention inside the models: auto (default), cudnn, flash")
                    ->check(CLI::IsMember({"auto", "cudnn", "flash"}));
                return [o] { return run_bench(*o); };
              }});

}  // namespace
}  // namespace x2v::cli
