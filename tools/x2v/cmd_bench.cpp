// x2v bench: timings on the GPU, one JSON object per line on stdout (a readable line per result on
// stderr). What it times:
//   gemm  — cuBLASLt bf16 GEMMs at the Wan DiT shapes (the ceiling the DiT's linears run at);
//   attn  — attention at the DiT shapes, cuDNN's fused kernel against the backend's own kernel;
//   dit   — one DiT forward (wan2.1-1.3b / wan2.1-14b, 480p / 720p, 512 text tokens, CFG off and on)
//           with random bf16 weights made on the GPU, written with the CUDA ops as the model runs;
//   conv  — cuDNN conv3d at the Wan VAE decoder's shapes.
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
#include "models/wan/dit.h"
#include "ops/cuda/cuda.h"
#endif

namespace x2v::cli {
namespace {

struct BenchOptions {
  std::string what = "gemm,attn,dit,conv";
  std::string models = "1.3b,14b";
  std::string res = "480p,720p";
  int reps = 3;
  int layers = 0;  // 0 = the model's own count
  bool breakdown = false;
  std::string tag;
};

bool has(const std::string& list, const std::string& item) {
  std::stringstream ss(list);
  std::string s;
  while (std::getline(ss, s, ','))
    if (s == item || s == "all") return true;
  return false;
}

#ifdef X2V_WITH_CUDA

using ops::Act;
namespace oc = ops::cuda;

std::string g_device;
std::string g_tag;

void emit(nlohmann::json j) {
  j["device"] = g_device;
  if (!g_tag.empty()) j["tag"] = g_tag;
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Median milliseconds of `f` over `reps` runs after one warm-up.
double time_ms(int reps, const std::function<void()>& f) {
  cuda::Timer t;
  f();
  cuda::synchronize();
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
  const std::vector<G> gs = {{"14b qkvo/cross 480p", 32760, 5120, 5120}, {"14b ffn_up 480p", 32760, 5120, 13824},
                             {"14b ffn_down 480p", 32760, 13824, 5120},  {"1.3b qkvo 480p", 32760, 1536, 1536},
                             {"1.3b ffn_up 480p", 32760, 1536, 8960},    {"1.3b ffn_down 480p", 32760, 8960, 1536},
                             {"square 8192", 8192, 8192, 8192}};
  for (const G& g : gs) {
    Tensor x = rnd({g.M, g.K}, DType::BF16, 1, 1.f), w = rnd({g.N, g.K}, DType::BF16, 2, 0.02f);
    Tensor b = rnd({g.N}, DType::BF16, 3, 0.1f);
    for (int variant = 0; variant < 3; ++variant) {
      if (variant > 0 && std::string(g.name).find("ffn_up") == std::string::npos) continue;
      const Act act = variant == 2 ? Act::GeluTanh : Act::None;
      const bool bias = variant >= 1;
      double ms = time_ms(o.reps + 2, [&] { oc::linear(x, w, bias ? b : Tensor(), act, DType::BF16); });
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
    for (int impl = 0; impl < 2; ++impl) {
      if (impl == 1 && !a.own) continue;
      const auto which = impl == 0 ? oc::AttnImpl::Cudnn : oc::AttnImpl::Own;
      double ms;
      try {
        ms = time_ms(impl == 0 ? o.reps + 2 : 1, [&] { oc::attention_with(which, q, k, v, 0.0884f, {}, {}); });
      } catch (const Error& e) {
        std::fprintf(stderr, "attn  %-20s %s: %s\n", a.name, impl ? "own" : "cudnn", e.what());
        emit({{"bench", "attn"}, {"name", a.name}, {"impl", impl ? "own" : "cudnn"}, {"error", e.what()}});
        continue;
      }
      const double tf = flop / (ms * 1e-3) / 1e12;
      std::fprintf(stderr, "attn  %-20s %-6s Lq%-6lld Lk%-6lld H%-3lld %9.3f ms %6.0f TFLOP/s\n", a.name,
                   impl ? "own" : "cudnn", (long long)a.Lq, (long long)a.Lk, (long long)a.H, ms, tf);
      emit({{"bench", "attn"}, {"name", a.name}, {"impl", impl ? "own" : "cudnn"}, {"Lq", a.Lq}, {"Lk", a.Lk},
            {"H", a.H}, {"D", D}, {"ms", ms}, {"tflops", tf}});
    }
  }
}

// ---- DiT forward with random weights (Wan2.1 block math, wan-spec §1.2–1.6)
struct Lin {
  Tensor w, b;
};
struct Block {
  Tensor mod;  // [6, d] f32
  Lin q, k, v, o, cq, ck, cv, co, f1, f2;
  Tensor nq, nk, cnq, cnk, n3w, n3b;  // f32
};
struct Dit {
  int64_t d, ffn, heads, layers;
  Lin patch, txt0, txt2, t0, t2, tproj, head;
  Tensor head_mod;
  std::vector<Block> blocks;
};

Lin make_lin(int64_t out, int64_t in, uint64_t& seed) {
  const float a = 1.f / std::sqrt(static_cast<float>(in));
  return {rnd({out, in}, DType::BF16, seed++, a), rnd({out}, DType::F32, seed++, 0.05f)};
}
Tensor make_vec(int64_t n, uint64_t& seed, float center, float a) {
  Tensor t = rnd({n}, DType::F32, seed++, a);
  if (center != 0.f) t = oc::binary(t, Tensor::from_f32(std::vector<float>(static_cast<size_t>(n), center), {n}).to(Device::CUDA), oc::Binary::Add);
  return t;
}

Dit make_dit(int64_t d, int64_t ffn, int64_t heads, int64_t layers) {
  uint64_t s = 1000;
  Dit m{d, ffn, heads, layers, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  m.patch = make_lin(d, 64, s);
  m.txt0 = make_lin(d, 4096, s);
  m.txt2 = make_lin(d, d, s);
  m.t0 = make_lin(d, 256, s);
  m.t2 = make_lin(d, d, s);
  m.tproj = make_lin(6 * d, d, s);
  m.head = make_lin(64, d, s);
  m.head_mod = rnd({2, d}, DType::F32, s++, 0.05f);
  for (int64_t i = 0; i < layers; ++i) {
    Block b;
    b.mod = rnd({6, d}, DType::F32, s++, 0.05f);
    b.q = make_lin(d, d, s), b.k = make_lin(d, d, s), b.v = make_lin(d, d, s), b.o = make_lin(d, d, s);
    b.cq = make_lin(d, d, s), b.ck = make_lin(d, d, s), b.cv = make_lin(d, d, s), b.co = make_lin(d, d, s);
    b.f1 = make_lin(ffn, d, s), b.f2 = make_lin(d, ffn, s);
    b.nq = make_vec(d, s, 1.f, 0.1f), b.nk = make_vec(d, s, 1.f, 0.1f);
    b.cnq = make_vec(d, s, 1.f, 0.1f), b.cnk = make_vec(d, s, 1.f, 0.1f);
    b.n3w = make_vec(d, s, 1.f, 0.1f), b.n3b = make_vec(d, s, 0.f, 0.1f);
    m.blocks.push_back(std::move(b));
  }
  return m;
}

// Per-stage times of one forward (summed over blocks), when on: each mark synchronizes.
struct Prof {
  bool on = false;
  std::unique_ptr<cuda::Timer> t;
  std::vector<std::pair<std::string, double>> acc;
  void begin() {
    if (!on) return;
    if (!t) t = std::make_unique<cuda::Timer>();
    t->start();
  }
  void mark(const char* name) {
    if (!on) return;
    const double ms = t->stop_ms();
    auto it = std::find_if(acc.begin(), acc.end(), [&](const auto& p) { return p.first == name; });
    if (it == acc.end())
      acc.emplace_back(name, ms);
    else
      it->second += ms;
    t->start();
  }
};
Prof g_prof;

Tensor lin(const Tensor& x, const Lin& l, Act act = Act::None, DType out = DType::BF16) {
  return oc::linear(x, l.w, l.b, act, out);
}

// One forward: latent [16, F, H, W] f32, text [512, 4096] bf16, timestep -> velocity [16, F, H, W].
Tensor dit_forward(const Dit& m, const Tensor& latent, const Tensor& text, float t) {
  const int64_t F = latent.size(1), Hg = latent.size(2) / 2, Wg = latent.size(3) / 2, L = F * Hg * Wg;
  const int64_t d = m.d, H = m.heads, D = d / H;
  const float eps = 1e-6f, scale = 1.f / std::sqrt(static_cast<float>(D));
  // Patchify: [C, F, Hg, 2, Wg, 2] -> [F, Hg, Wg, C, 2, 2] -> tokens [L, 64] · W_pe.
  Tensor p = oc::permute(latent.reshape({16, F, Hg, 2, Wg, 2}), {1, 2, 4, 0, 3, 5}).reshape({L, 64});
  Tensor x = lin(p, m.patch, Act::None, DType::F32);
  // Time embedding (f32 in the reference; here through the same bf16 GEMMs, it is 1 row).
  std::vector<float> sinus(256);
  for (int i = 0; i < 128; ++i) {
    const double w = std::pow(10000.0, -static_cast<double>(i) / 128.0);
    sinus[static_cast<size_t>(i)] = static_cast<float>(std::cos(t * w));
    sinus[static_cast<size_t>(i + 128)] = static_cast<float>(std::sin(t * w));
  }
  Tensor sin_t = Tensor::from_f32(sinus, {1, 256}).to(Device::CUDA);
  Tensor e = lin(oc::unary(lin(sin_t, m.t0, Act::None, DType::F32), oc::Unary::SiLU), m.t2, Act::None, DType::F32);
  Tensor e0 = lin(oc::unary(e, oc::Unary::SiLU), m.tproj, Act::None, DType::F32).reshape({6, d});
  Tensor ctx = lin(lin(text, m.txt0, Act::GeluTanh), m.txt2);  // [512, d] bf16
  const int64_t C = ctx.size(0);
  Prof& P = g_prof;
  P.begin();
  // The FFN's gated residual of block i is applied by block i+1's first norm (or the head's), fused.
  Tensor pend_y, pend_gate;
  for (const Block& b : m.blocks) {
    Tensor mod = oc::binary(b.mod, e0, oc::Binary::Add);  // [6, d]
    auto row = [&](int i) { return mod[i]; };
    // Self-attention.
    Tensor a = pend_y.defined() ? oc::add_layer_norm_modulate(x, pend_y, pend_gate, row(0), row(1), eps, DType::BF16)
                                : oc::layer_norm_modulate(x, row(0), row(1), eps, DType::BF16);
    P.mark("(add+)ln_modulate");
    Tensor ql = lin(a, b.q), kl = lin(a, b.k), vl = lin(a, b.v);
    P.mark("gemm qkv");
    Tensor q = oc::rms_norm_rope(ql, b.nq, eps, H, F, Hg, Wg);
    Tensor k = oc::rms_norm_rope(kl, b.nk, eps, H, F, Hg, Wg);
    Tensor v = vl.reshape({L, H, D});
    P.mark("rms_norm_rope");
    Tensor at = oc::attention(q, k, v, scale, {}, {});
    P.mark("self attention");
    Tensor y = lin(at.reshape({L, d}), b.o);
    P.mark("gemm o");
    // Cross-attention over the 512 text tokens (no modulation, no gate).
    Tensor c = oc::add_layer_norm(x, y, row(2), b.n3w, b.n3b, eps, DType::BF16);
    P.mark("gated_add+layer_norm");
    Tensor cql = lin(c, b.cq);
    P.mark("gemm cross q");
    Tensor cq = oc::rms_norm(cql, b.cnq, eps, DType::BF16).reshape({L, H, D});
    P.mark("rms_norm");
    Tensor ck = oc::rms_norm(lin(ctx, b.ck), b.cnk, eps, DType::BF16).reshape({C, H, D});
    Tensor cv = lin(ctx, b.cv).reshape({C, H, D});
    P.mark("cross k/v (text)");
    Tensor ca = oc::attention(cq, ck, cv, scale, {}, {});
    P.mark("cross attention");
    Tensor co = lin(ca.reshape({L, d}), b.co);
    P.mark("gemm cross o");
    // FFN.
    Tensor f = oc::add_layer_norm_modulate(x, co, Tensor(), row(3), row(4), eps, DType::BF16);
    P.mark("add+ln_modulate");
    Tensor h1 = lin(f, b.f1, Act::GeluTanh);
    P.mark("gemm ffn up+gelu");
    pend_y = lin(h1, b.f2);
    pend_gate = row(5);
    P.mark("gemm ffn down");
  }
  // Head (f32 in the reference) and unpatchify.
  Tensor hm = oc::binary(m.head_mod, e.reshape({d}), oc::Binary::Add);
  Tensor hx = pend_y.defined() ? oc::add_layer_norm_modulate(x, pend_y, pend_gate, hm[0], hm[1], eps, DType::F32)
                               : oc::layer_norm_modulate(x, hm[0], hm[1], eps, DType::F32);
  Tensor out = lin(hx, m.head, Act::None, DType::F32);  // [L, 64] = [F, Hg, Wg, 2, 2, 16]
  return oc::permute(out.reshape({F, Hg, Wg, 2, 2, 16}), {5, 0, 1, 3, 2, 4}).reshape({16, F, 2 * Hg, 2 * Wg});
}

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
    Dit m = make_dit(mm.d, mm.ffn, mm.heads, layers);
    cuda::synchronize();
    const size_t weights_bytes = cuda::mem_stats().in_use;
    Tensor text = rnd({512, 4096}, DType::BF16, 77, 1.f), text_neg = rnd({512, 4096}, DType::BF16, 78, 1.f);
    for (const R& r : rs) {
      if (!has(o.res, r.name)) continue;
      if (std::string(mm.name) == "wan2.1-1.3b" && std::string(r.name) == "720p" && !has(o.res, "720p-1.3b")) continue;
      Tensor lat = rnd({16, r.F, r.H, r.W}, DType::F32, 99, 1.f);
      const int64_t L = r.F * (r.H / 2) * (r.W / 2);
      cuda::reset_peak();
      Tensor out;
      double fwd = time_ms(o.reps, [&] { out = dit_forward(m, lat, text, 999.f); });
      double cfg = time_ms(std::max(1, o.reps - 1), [&] {
        Tensor c = dit_forward(m, lat, text, 999.f), u = dit_forward(m, lat, text_neg, 999.f);
        out = oc::axpby(u, 1.f - 5.f, c, 5.f);
      });
      cuda::MemStats st = cuda::mem_stats();
      if (o.breakdown) {
        g_prof.on = true;
        g_prof.acc.clear();
        dit_forward(m, lat, text, 999.f);
        g_prof.on = false;
        nlohmann::json stages = nlohmann::json::object();
        double total = 0;
        for (const auto& [n, v] : g_prof.acc) total += v;
        for (const auto& [n, v] : g_prof.acc) {
          stages[n] = v;
          std::fprintf(stderr, "  stage %-20s %9.1f ms  %5.1f%%\n", n.c_str(), v, 100.0 * v / total);
        }
        emit({{"bench", "dit_breakdown"}, {"model", mm.name}, {"res", r.name}, {"layers", layers}, {"stages_ms", stages},
              {"blocks_total_ms", total}});
      }
      std::vector<float> ov = out.to_vector();
      bool finite = std::all_of(ov.begin(), ov.end(), [](float v) { return std::isfinite(v); });
      const double per_layer = static_cast<double>(layers) / mm.layers;
      const double lin_flop = (8.0 * L * mm.d * mm.d + 4.0 * L * mm.d * mm.d + 4.0 * 512 * mm.d * mm.d +
                               4.0 * L * mm.d * mm.ffn) * layers;
      const double attn_flop = (4.0 * L * L * mm.d + 4.0 * L * 512 * mm.d) * layers;
      std::fprintf(stderr,
                   "dit   %-12s %-5s L=%-6lld layers %-3lld forward %8.1f ms  CFG(2 fwd) %8.1f ms  peak %.2f GiB "
                   "(weights %.2f GiB)  %s\n",
                   mm.name, r.name, (long long)L, (long long)layers, fwd, cfg,
                   static_cast<double>(st.peak_in_use) / (1 << 30), static_cast<double>(weights_bytes) / (1 << 30),
                   finite ? "finite" : "NON-FINITE OUTPUT");
      emit({{"bench", "dit"}, {"model", mm.name}, {"res", r.name}, {"tokens", L}, {"text_tokens", 512},
            {"layers", layers}, {"layers_fraction", per_layer}, {"forward_ms", fwd}, {"cfg_ms", cfg},
            {"peak_gib", static_cast<double>(st.peak_in_use) / (1 << 30)},
            {"peak_reserved_gib", static_cast<double>(st.peak_reserved) / (1 << 30)},
            {"weights_gib", static_cast<double>(weights_bytes) / (1 << 30)},
            {"tflops_effective", (lin_flop + attn_flop) / (fwd * 1e-3) / 1e12}, {"output_finite", finite}});
    }
  }
  cuda::empty_cache();
}

// ---- the same forward through the model code (src/models/wan/dit.*) on device tensors: random
// weights laid out as its loader lays them out on CUDA (matmul weights bf16, the rest f32).
void bench_dit_model(const BenchOptions& o) {
  struct M {
    const char* name;
    int64_t d, ffn, heads, layers;
  };
  struct R {
    const char* name;
    int64_t F, H, W;
  };
  const std::vector<M> ms = {{"wan2.1-1.3b", 1536, 8960, 12, 30}, {"wan2.1-14b", 5120, 13824, 40, 40}};
  const std::vector<R> rs = {{"480p", 21, 60, 104}, {"720p", 21, 90, 160}};
  for (const M& mm : ms) {
    if (!has(o.models, std::string(mm.name).substr(7))) continue;
    cuda::empty_cache();
    models::wan::DitConfig cfg;
    cfg.model_type = "t2v";
    cfg.dim = mm.d, cfg.ffn_dim = mm.ffn, cfg.num_heads = mm.heads;
    cfg.num_layers = o.layers > 0 ? o.layers : mm.layers;
    cfg.in_dim = 16, cfg.out_dim = 16, cfg.text_dim = 4096, cfg.freq_dim = 256, cfg.text_len = 512;
    cfg.validate("x2v bench");
    uint64_t s = 5000;
    auto L = [&](int64_t out, int64_t in) {
      return models::wan::LinearW{rnd({out, in}, DType::BF16, s++, 1.f / std::sqrt(float(in))),
                                  rnd({out}, DType::F32, s++, 0.05f)};
    };
    auto V = [&](int64_t n, float c) { return make_vec(n, s, c, 0.1f); };
    models::wan::DitWeights w;
    w.patch_embedding = L(mm.d, 64);
    w.text_embedding_0 = L(mm.d, 4096), w.text_embedding_2 = L(mm.d, mm.d);
    w.time_embedding_0 = L(mm.d, 256), w.time_embedding_2 = L(mm.d, mm.d);
    w.time_projection_1 = L(6 * mm.d, mm.d);
    for (int64_t i = 0; i < cfg.num_layers; ++i) {
      models::wan::DitBlock b;
      b.modulation = rnd({6, mm.d}, DType::F32, s++, 0.05f);
      b.self_attn.q = L(mm.d, mm.d), b.self_attn.k = L(mm.d, mm.d), b.self_attn.v = L(mm.d, mm.d),
      b.self_attn.o = L(mm.d, mm.d);
      b.self_attn.norm_q = V(mm.d, 1.f), b.self_attn.norm_k = V(mm.d, 1.f);
      b.norm3.weight = V(mm.d, 1.f), b.norm3.bias = V(mm.d, 0.f);
      b.cross_attn.q = L(mm.d, mm.d), b.cross_attn.k = L(mm.d, mm.d), b.cross_attn.v = L(mm.d, mm.d),
      b.cross_attn.o = L(mm.d, mm.d);
      b.cross_attn.norm_q = V(mm.d, 1.f), b.cross_attn.norm_k = V(mm.d, 1.f);
      b.ffn_0 = L(mm.ffn, mm.d), b.ffn_2 = L(mm.d, mm.ffn);
      w.blocks.push_back(std::move(b));
    }
    w.head_modulation = rnd({2, mm.d}, DType::F32, s++, 0.05f);
    w.head_head = L(64, mm.d);
    models::wan::DitModel model(cfg, std::move(w));
    Tensor text = rnd({512, 4096}, DType::F32, 77, 1.f);
    for (const R& r : rs) {
      if (!has(o.res, r.name)) continue;
      if (std::string(mm.name) == "wan2.1-1.3b" && std::string(r.name) == "720p" && !has(o.res, "720p-1.3b")) continue;
      Tensor lat = rnd({16, r.F, r.H, r.W}, DType::F32, 99, 1.f);
      cuda::reset_peak();
      Tensor out;
      double fwd;
      try {
        fwd = time_ms(o.reps, [&] {
          auto ctx = model.embed_context(text);
          out = model.forward(lat, Tensor(), Tensor::scalar_f32(999.f), ctx);
        });
      } catch (const Error& e) {
        std::fprintf(stderr, "dit-model %s %s: %s\n", mm.name, r.name, e.what());
        emit({{"bench", "dit_model"}, {"model", mm.name}, {"res", r.name}, {"error", e.what()}});
        continue;
      }
      cuda::MemStats st = cuda::mem_stats();
      std::vector<float> ov = out.to_vector();
      bool finite = std::all_of(ov.begin(), ov.end(), [](float v) { return std::isfinite(v); });
      std::fprintf(stderr, "dit-model %-12s %-5s layers %-3lld forward %8.1f ms  peak %.2f GiB  %s\n", mm.name, r.name,
                   (long long)cfg.num_layers, fwd, static_cast<double>(st.peak_in_use) / (1 << 30),
                   finite ? "finite" : "NON-FINITE OUTPUT");
      emit({{"bench", "dit_model"}, {"model", mm.name}, {"res", r.name}, {"layers", cfg.num_layers},
            {"forward_ms", fwd}, {"peak_gib", static_cast<double>(st.peak_in_use) / (1 << 30)},
            {"output_finite", finite}});
    }
  }
  cuda::empty_cache();
}

// ---- Wan2.1 VAE decoder (wan-spec §5.3) with random bf16 weights, decoded one latent frame at a time
// with the reference's causal caches (2 frames per temporal conv), as the reference schedules it.
// Leaves out the middle AttentionBlock (single head of 384 channels over one frame's 6240 pixels:
// about 1 % of the decoder's FLOPs; no CUDA attention kernel takes head dim 384 yet).
struct CConv {  // a causal conv with its frame cache
  Tensor w, b;
  int kt = 3, ph = 1;
  Tensor cache;
  Tensor operator()(const Tensor& x) {
    Tensor in = cache.defined() ? oc::concat({cache, x}, 1) : x;
    const int cached = cache.defined() ? static_cast<int>(cache.size(1)) : 0;
    const int front = std::max(0, kt - 1 - cached);
    if (kt > 1) {
      const int64_t T = in.size(1), keep = std::min<int64_t>(2, T);
      cache = oc::narrow(in, 1, T - keep, T);
    }
    return oc::conv3d(in, w, b, {1, 1, 1}, {front, 0, ph, ph, ph, ph});
  }
};
struct ResB {
  Tensor g1, g2;
  CConv c1, c2;
  std::unique_ptr<CConv> sc;
};
struct Up {
  std::unique_ptr<CConv> time;  // upsample3d
  Tensor w, b;                  // the spatial conv 3×3 (C → C/2)
};
struct VaeDec {
  CConv conv1;
  std::vector<ResB> middle;
  std::vector<std::vector<ResB>> stages;
  std::vector<Up> ups;
  Tensor head_g;
  CConv head;
};

CConv make_cconv(int64_t out, int64_t in, int kt, int k, uint64_t& s) {
  CConv c;
  const float a = 1.f / std::sqrt(static_cast<float>(in * kt * k * k));
  c.w = rnd({out, in, kt, k, k}, DType::BF16, s++, a);
  c.b = rnd({out}, DType::F32, s++, 0.02f);
  c.kt = kt;
  c.ph = k / 2;
  return c;
}
ResB make_res(int64_t in, int64_t out, uint64_t& s) {
  ResB r;
  r.g1 = make_vec(in, s, 1.f, 0.1f);
  r.g2 = make_vec(out, s, 1.f, 0.1f);
  r.c1 = make_cconv(out, in, 3, 3, s);
  r.c2 = make_cconv(out, out, 3, 3, s);
  if (in != out) r.sc = std::make_unique<CConv>(make_cconv(out, in, 1, 1, s));
  return r;
}

Tensor norm_silu(const Tensor& x, const Tensor& g) {
  const Shape sh = x.shape();
  return oc::channel_rms_norm_silu(x.reshape({sh[0], -1}), g).reshape(sh);
}
Tensor res_fwd(ResB& r, const Tensor& x) {
  Tensor h = r.c2(norm_silu(r.c1(norm_silu(x, r.g1)), r.g2));
  return oc::binary(h, r.sc ? (*r.sc)(x) : x, oc::Binary::Add);
}
Tensor up_fwd(Up& u, const Tensor& x, bool first_chunk) {
  Tensor y = x;
  if (u.time) {
    if (first_chunk) {
      // The reference's first chunk skips the time conv and only primes its cache state.
    } else {
      const int64_t C = x.size(0), n = x.size(1), H = x.size(2), W = x.size(3);
      Tensor t = (*u.time)(x);  // [2C, n, H, W]: channels [0:C] → frame 2i, [C:2C] → frame 2i+1
      y = oc::permute(t.reshape({2, C, n, H * W}), {1, 2, 0, 3}).reshape({C, 2 * n, H, W});
    }
  }
  y = oc::upsample_nearest2x(y);
  return oc::conv3d(y, u.w, u.b, {1, 1, 1}, {0, 0, 1, 1, 1, 1});
}

VaeDec make_vae_dec(uint64_t s) {
  VaeDec d;
  d.conv1 = make_cconv(384, 16, 3, 3, s);
  d.middle.push_back(make_res(384, 384, s));
  d.middle.push_back(make_res(384, 384, s));
  const int64_t in_ch[4] = {384, 192, 192, 96}, out_ch[4] = {384, 384, 192, 96};
  for (int i = 0; i < 4; ++i) {
    std::vector<ResB> st;
    for (int j = 0; j < 3; ++j) st.push_back(make_res(j == 0 ? in_ch[i] : out_ch[i], out_ch[i], s));
    d.stages.push_back(std::move(st));
    if (i < 3) {
      Up u;
      const int64_t C = out_ch[i];
      if (i < 2) u.time = std::make_unique<CConv>(make_cconv(2 * C, C, 3, 1, s));
      if (u.time) u.time->ph = 0;
      u.w = rnd({C / 2, C, 1, 3, 3}, DType::BF16, s++, 1.f / std::sqrt(static_cast<float>(C * 9)));
      u.b = rnd({C / 2}, DType::F32, s++, 0.02f);
      d.ups.push_back(std::move(u));
    }
  }
  d.head_g = make_vec(96, s, 1.f, 0.1f);
  d.head = make_cconv(3, 96, 3, 3, s);
  return d;
}

// z [16, T, h, w] (bf16) → video [3, 1 + 4(T−1), 8h, 8w] (f32, clamped).
Tensor vae_decode(VaeDec& d, const Tensor& z) {
  const int64_t T = z.size(1);
  // The video is written into its final buffer chunk by chunk (no list of chunks and concatenation,
  // which would hold the output twice at the peak).
  Tensor video = Tensor::empty({3, 1 + 4 * (T - 1), 8 * z.size(2), 8 * z.size(3)}, DType::F32, Device::CUDA);
  int64_t t0 = 0;
  for (int64_t t = 0; t < T; ++t) {
    Tensor x = d.conv1(oc::narrow(z, 1, t, t + 1));
    for (ResB& r : d.middle) x = res_fwd(r, x);
    for (size_t i = 0; i < d.stages.size(); ++i) {
      for (ResB& r : d.stages[i]) x = res_fwd(r, x);
      if (i < d.ups.size()) x = up_fwd(d.ups[i], x, t == 0);
    }
    x = d.head(norm_silu(x, d.head_g));
    Tensor f = oc::clamp(x2v::cuda::convert(x, DType::F32), -1.f, 1.f);
    for (int64_t c = 0; c < 3; ++c) video[c].slice(t0, t0 + f.size(1)).copy_from(f[c]);
    t0 += f.size(1);
  }
  return video;
}

void bench_vae(const BenchOptions& o) {
  struct R {
    const char* name;
    int64_t T, h, w;
  };
  for (const R& r : {R{"480p", 21, 60, 104}, R{"720p", 21, 90, 160}}) {
    if (!has(o.res, r.name)) continue;
    cuda::empty_cache();
    Tensor z = rnd({16, r.T, r.h, r.w}, DType::BF16, 31, 1.f);
    Tensor out;
    VaeDec d = make_vae_dec(9000);
    cuda::synchronize();
    const size_t wbytes = cuda::mem_stats().in_use;
    auto run = [&] {
      VaeDec fresh_caches = std::move(d);
      auto clear = [](CConv& c) { c.cache = Tensor(); };
      clear(fresh_caches.conv1);
      clear(fresh_caches.head);
      for (auto& rb : fresh_caches.middle) clear(rb.c1), clear(rb.c2);
      for (auto& st : fresh_caches.stages)
        for (auto& rb : st) clear(rb.c1), clear(rb.c2);
      for (auto& u : fresh_caches.ups)
        if (u.time) clear(*u.time);
      out = Tensor();
      out = vae_decode(fresh_caches, z);
      d = std::move(fresh_caches);
    };
    run();
    cuda::synchronize();
    cuda::reset_peak();
    double ms;
    try {
      ms = time_ms(std::max(1, o.reps - 1), run);
    } catch (const Error& e) {
      std::fprintf(stderr, "vae   %s: %s\n", r.name, e.what());
      emit({{"bench", "vae_decode"}, {"res", r.name}, {"error", e.what()}});
      continue;
    }
    cuda::MemStats st = cuda::mem_stats();
    std::fprintf(stderr, "vae   decode %-5s latent %lldx%lldx%lld -> %s: %8.1f ms  peak %.2f GiB (weights %.2f GiB, output %.2f GiB)\n",
                 r.name, (long long)r.T, (long long)r.h, (long long)r.w, shape_str(out.shape()).c_str(), ms,
                 static_cast<double>(st.peak_in_use) / (1 << 30), static_cast<double>(wbytes) / (1 << 30),
                 static_cast<double>(out.nbytes()) / (1 << 30));
    emit({{"bench", "vae_decode"}, {"res", r.name}, {"latent", {r.T, r.h, r.w}}, {"frames", out.size(1)},
          {"ms", ms}, {"peak_gib", static_cast<double>(st.peak_in_use) / (1 << 30)},
          {"weights_gib", static_cast<double>(wbytes) / (1 << 30)},
          {"output_gib", static_cast<double>(out.nbytes()) / (1 << 30)}, {"dtype", "bf16"},
          {"note", "synthetic Wan2.1 decoder, middle attention block left out"}});
  }
  cuda::empty_cache();
}

// ---- umT5-XXL encoder (wan-spec §3.1) with random bf16 weights, 512 tokens: 24 layers of RMSNorm,
// self-attention with a per-layer relative-position bias (64 heads of 64, no scaling), gated-GELU FFN.
// The biased attention goes to the backend's own kernel (cuDNN's path here takes no bias yet).
void bench_t5(const BenchOptions& o) {
  const int64_t L = 512, d = 4096, H = 64, Dh = 64, F = 10240, layers = o.layers > 0 ? o.layers : 24;
  cuda::empty_cache();
  uint64_t s = 7000;
  struct Layer {
    Tensor n1, n2, q, k, v, o, wi0, wi1, wo, bias;
  };
  auto W = [&](int64_t out, int64_t in) { return rnd({out, in}, DType::BF16, s++, 1.f / std::sqrt(float(in))); };
  std::vector<Layer> ls;
  for (int64_t i = 0; i < layers; ++i) {
    Layer l;
    l.n1 = make_vec(d, s, 1.f, 0.1f), l.n2 = make_vec(d, s, 1.f, 0.1f);
    l.q = W(d, d), l.k = W(d, d), l.v = W(d, d), l.o = W(d, d);
    l.wi0 = W(F, d), l.wi1 = W(F, d), l.wo = W(d, F);
    l.bias = rnd({H, L, L}, DType::F32, s++, 1.f);
    ls.push_back(std::move(l));
  }
  Tensor fin = make_vec(d, s, 1.f, 0.1f);
  cuda::synchronize();
  const size_t wbytes = cuda::mem_stats().in_use;
  Tensor emb = rnd({L, d}, DType::F32, 55, 1.f), out;
  auto run = [&] {
    Tensor x = emb.clone();
    for (const Layer& l : ls) {
      Tensor h = oc::rms_norm(x, l.n1, 1e-6f, DType::BF16);
      Tensor q = oc::linear(h, l.q, {}, Act::None, DType::BF16).reshape({L, H, Dh});
      Tensor k = oc::linear(h, l.k, {}, Act::None, DType::BF16).reshape({L, H, Dh});
      Tensor v = oc::linear(h, l.v, {}, Act::None, DType::BF16).reshape({L, H, Dh});
      Tensor a = oc::attention(q, k, v, 1.f, l.bias, {}).reshape({L, d});
      oc::add_(x, oc::linear(a, l.o, {}, Act::None, DType::BF16));
      h = oc::rms_norm(x, l.n2, 1e-6f, DType::BF16);
      Tensor g = oc::binary(oc::linear(h, l.wi0, {}, Act::GeluTanh, DType::BF16),
                            oc::linear(h, l.wi1, {}, Act::None, DType::BF16), oc::Binary::Mul);
      oc::add_(x, oc::linear(g, l.wo, {}, Act::None, DType::BF16));
    }
    out = oc::rms_norm(x, fin, 1e-6f, DType::BF16);
  };
  cuda::reset_peak();
  const double ms = time_ms(o.reps + 2, run);
  cuda::MemStats st = cuda::mem_stats();
  std::fprintf(stderr, "t5    umt5-xxl encoder, %lld layers, %lld tokens: %8.2f ms  peak %.2f GiB (weights %.2f GiB)\n",
               (long long)layers, (long long)L, ms, static_cast<double>(st.peak_in_use) / (1 << 30),
               static_cast<double>(wbytes) / (1 << 30));
  emit({{"bench", "t5"}, {"layers", layers}, {"tokens", L}, {"ms", ms},
        {"peak_gib", static_cast<double>(st.peak_in_use) / (1 << 30)},
        {"weights_gib", static_cast<double>(wbytes) / (1 << 30)},
        {"note", "synthetic umT5-XXL encoder from the CUDA ops; biased attention on the own kernel"}});
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
        ms = time_ms(o.reps, [&] { oc::conv3d(x, w, b, {1, 1, 1}, {2, 0, 1, 1, 1, 1}); });
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
  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  emit({{"bench", "start"}, {"date", date}, {"what", o.what}, {"reps", o.reps}});
  if (has(o.what, "gemm")) bench_gemm(o);
  if (has(o.what, "attn")) bench_attn(o);
  if (has(o.what, "dit")) bench_dit(o);
  if (has(o.what, "dit-model")) bench_dit_model(o);
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
                sub.add_option("--what", o->what, "comma list of gemm, attn, dit, dit-model, conv, vae, t5 (or all)");
                sub.add_option("--models", o->models, "DiT sizes: 1.3b, 14b");
                sub.add_option("--res", o->res, "resolutions: 480p, 720p (add 720p-1.3b for 1.3B at 720p)");
                sub.add_option("--reps", o->reps, "timed repetitions (median reported)")->check(CLI::Range(1, 100));
                sub.add_option("--layers", o->layers, "blocks to run (0 = the model's count)");
                sub.add_flag("--breakdown", o->breakdown, "also time each stage of the DiT blocks (synchronizing)");
                sub.add_option("--tag", o->tag, "a label copied into every JSON line");
                return [o] { return run_bench(*o); };
              }});

}  // namespace
}  // namespace x2v::cli
