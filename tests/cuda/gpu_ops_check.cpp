// Every CUDA op against the CPU reference, at several shapes, with random data, in f32 and bf16,
// with every device allocation poisoned (NaN) first, so an unwritten output element fails the
// check. Then, where the golden fixtures are given, the DiT fixture run on the GPU.
//
// Runs on the GPU machine only (bench/device_run.sh); not part of CI. Prints one line per case and
// exits non-zero if any case fails. bf16 cases must reach relative L2 ≤ 2e-2 and cosine ≥ 0.999.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "ops/cuda/cuda.h"
#include "ops/cuda/flash_schedule.h"
#include "ops/ops.h"

#if __has_include("models/wan/dit.h")
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "models/wan/dit.h"
#define X2V_CHECK_DIT_FIXTURE 1
#endif

using namespace x2v;

namespace {

int g_fail = 0, g_pass = 0;
uint64_t g_seed = 1;

// Uniform values rounded to bf16, so CPU and GPU see identical inputs in either dtype.
Tensor host_random(const Shape& s, float lo = -1.f, float hi = 1.f) {
  std::mt19937_64 rng(g_seed++ * 0x9E3779B97F4A7C15ull);
  std::uniform_real_distribution<float> u(lo, hi);
  Tensor t = Tensor::empty(s, DType::F32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = round_bf16(u(rng));
  return t;
}

Tensor dev(const Tensor& h, DType dt) { return h.to(dt).to(Device::CUDA); }

struct Metric {
  double rel = 0, cos = 0;
  bool finite = true;
};
Metric compare(const Tensor& got, const Tensor& ref) {
  std::vector<float> g = got.to_vector(), r = ref.to_vector();
  Metric m;
  if (g.size() != r.size()) {
    m.finite = false;
    return m;
  }
  double num = 0, den = 0, dot = 0, ng = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (!std::isfinite(g[i])) m.finite = false;
    double d = double(g[i]) - r[i];
    num += d * d;
    den += double(r[i]) * r[i];
    dot += double(g[i]) * r[i];
    ng += double(g[i]) * g[i];
  }
  m.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  m.cos = (ng > 0 && den > 0) ? dot / std::sqrt(ng * den) : (num == 0 ? 1.0 : 0.0);
  return m;
}

void report(const std::string& op, const std::string& shape, DType dt, const Tensor& got, const Tensor& ref,
            double tol) {
  Metric m = compare(got, ref);
  const bool same_shape = got.shape() == ref.shape();
  const bool ok = same_shape && m.finite && m.rel <= tol && m.cos >= 0.999;
  std::printf("%-4s %-24s %-34s %-5s rel_l2 %.2e  cos %.6f%s\n", ok ? "ok" : "FAIL", op.c_str(), shape.c_str(),
              dtype_name(dt), m.rel, m.cos, same_shape ? (m.finite ? "" : "  (non-finite)") : "  (shape)");
  (ok ? g_pass : g_fail)++;
}

void guarded(const std::string& what, const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    std::printf("FAIL %-24s threw: %s\n", what.c_str(), e.what());
    ++g_fail;
  }
}

double tol_for(DType dt, double f32_tol = 1e-4) { return dt == DType::BF16 ? 2e-2 : f32_tol; }

void check_linear() {
  // {5, 588, 80}: CLIP's patch embedding (3·14·14 inputs: rows of 1176 bytes in bf16, not 16-byte
  // aligned); {5, 80, 240}: the fixture CLIP's fused qkv.
  const std::vector<std::array<int64_t, 3>> shapes = {{1, 16, 8},       {37, 72, 40}, {256, 320, 192},
                                                      {515, 1536, 256}, {5, 588, 80}, {5, 80, 240}};
  for (auto [M, K, N] : shapes)
    for (DType dt : {DType::F32, DType::BF16})
      for (ops::Act act : {ops::Act::None, ops::Act::GeluTanh, ops::Act::SiLU, ops::Act::GeluErf})
        for (bool with_bias : {true, false}) {
          const std::string sh = "M" + std::to_string(M) + " K" + std::to_string(K) + " N" + std::to_string(N) +
                                 " act" + std::to_string(int(act)) + (with_bias ? " bias" : "");
          guarded("linear " + sh, [&] {
            Tensor x = host_random({M, K}), w = host_random({N, K}, -0.2f, 0.2f), b = host_random({N});
            Tensor ref = ops::linear(x, w, with_bias ? b : Tensor(), act);
            for (DType out : {DType::F32, DType::BF16}) {
              Tensor got = ops::linear(dev(x, dt), dev(w, DType::BF16), with_bias ? dev(b, DType::F32) : Tensor(), act, out);
              report("linear", sh + (out == DType::BF16 ? " ->bf16" : ""), dt, got, ref, 2e-2);
            }
          });
        }
  // {4, 5, 20, 5} and {4, 5, 5, 20}: the two GEMMs of the two-GEMM attention at the fixture CLIP's
  // shape (leading dims of 20 and 5 elements).
  for (auto [B, M, K, N] : std::vector<std::array<int64_t, 4>>{
           {1, 5, 8, 3}, {4, 64, 96, 80}, {3, 129, 128, 257}, {4, 5, 20, 5}, {4, 5, 5, 20}})
    for (DType dt : {DType::F32, DType::BF16}) {
      const std::string sh = "B" + std::to_string(B) + " M" + std::to_string(M) + " K" + std::to_string(K) + " N" +
                             std::to_string(N);
      guarded("matmul_nt " + sh, [&] {
        Tensor a = host_random({B, M, K}), b = host_random({B, N, K});
        report("matmul_nt", sh, dt, ops::matmul_nt(dev(a, dt), dev(b, dt)), ops::matmul_nt(a, b), 2e-2);
      });
    }
}

void check_norms() {
  for (auto [R, D] : std::vector<std::array<int64_t, 2>>{{1, 7}, {33, 128}, {300, 1536}, {64, 5120}, {3, 17004}})
    for (DType dt : {DType::F32, DType::BF16}) {
      const std::string sh = "R" + std::to_string(R) + " D" + std::to_string(D);
      guarded("norms " + sh, [&] {
        Tensor x = host_random({R, D}, -2.f, 3.f), w = host_random({D}), b = host_random({D});
        Tensor sh1 = host_random({D}), sc1 = host_random({D}), shr = host_random({R, D}), scr = host_random({R, D});
        report("layer_norm", sh, dt, ops::layer_norm(dev(x, dt), dev(w, dt), dev(b, dt), 1e-6f),
               ops::layer_norm(x, w, b, 1e-6f), tol_for(dt));
        report("layer_norm(no affine)", sh, dt, ops::layer_norm(dev(x, dt), Tensor(), Tensor(), 1e-6f),
               ops::layer_norm(x, Tensor(), Tensor(), 1e-6f), tol_for(dt));
        report("layer_norm_modulate", sh, dt,
               ops::layer_norm_modulate(dev(x, dt), dev(sh1, DType::F32), dev(sc1, DType::F32), 1e-6f),
               ops::layer_norm_modulate(x, sh1, sc1, 1e-6f), tol_for(dt));
        report("layer_norm_modulate/tok", sh, dt,
               ops::layer_norm_modulate(dev(x, dt), dev(shr, DType::F32), dev(scr, DType::F32), 1e-6f),
               ops::layer_norm_modulate(x, shr, scr, 1e-6f), tol_for(dt));
        report("ln_modulate ->bf16", sh, dt,
               ops::cuda::layer_norm_modulate(dev(x, dt), dev(sh1, DType::F32), dev(sc1, DType::F32), 1e-6f,
                                              DType::BF16),
               ops::layer_norm_modulate(x, sh1, sc1, 1e-6f), 2e-2);
        Tensor xr = dt == DType::BF16 ? x : x;  // the CPU rounds nothing; bf16 rounding is inside the tolerance
        report("rms_norm", sh, dt, ops::rms_norm(dev(x, dt), dev(w, DType::F32), 1e-6f), ops::rms_norm(xr, w, 1e-6f),
               tol_for(dt));
        // Fused residual updates + norm: LN of x + y·gate with x left as it was; x += y·gate, alone or
        // with a second update y2 (ungated, as the DiT's FFN norm adds the cross-attention, or gated by
        // a row), then LN-modulate of the new x.
        for (bool per_tok : {false, true}) {
          Tensor y = host_random({R, D}), y2 = host_random({R, D}), gate = per_tok ? host_random({R, D}) : host_random({D});
          Tensor gate2 = host_random({D});
          const std::string tok = per_tok ? "/tok" : "";
          Tensor x1 = x.clone();
          ops::gated_add_(x1, y, gate);
          Tensor xd = dev(x, DType::F32);
          Tensor got = ops::cuda::add_layer_norm(xd, dev(y, dt), dev(gate, DType::F32), dev(w, DType::F32),
                                                 dev(b, DType::F32), 1e-6f, dt);
          report("add_layer_norm" + tok, sh, dt, got, ops::layer_norm(x1, w, b, 1e-6f), tol_for(dt));
          report("add_layer_norm (x kept)", sh, dt, xd, x, 0.0);
          for (int second : {0, 1, 2}) {  // no y2; y2 ungated; y2·gate2
            Tensor xr = x1.clone();
            if (second == 1) ops::add_(xr, y2);
            if (second == 2) ops::gated_add_(xr, y2, gate2);
            Tensor xd2 = dev(x, DType::F32);
            Tensor got2 = ops::cuda::add_layer_norm_modulate(
                xd2, dev(y, dt), dev(gate, DType::F32), second ? dev(y2, dt) : Tensor(),
                second == 2 ? dev(gate2, DType::F32) : Tensor(), dev(shr, DType::F32), dev(scr, DType::F32), 1e-6f, dt);
            const std::string what = std::string("add_ln_modulate") + (second == 1 ? "+y2" : second == 2 ? "+y2·g2" : "") + tok;
            report(what, sh, dt, got2, ops::layer_norm_modulate(xr, shr, scr, 1e-6f), tol_for(dt));
            report(what + " (x)", sh, dt, xd2, xr, tol_for(dt, 1e-6));
          }
        }
        Tensor xc = host_random({D, R}), g = host_random({D});
        report("channel_rms_norm", "C" + std::to_string(D) + " N" + std::to_string(R), dt,
               ops::channel_rms_norm(dev(xc, dt), dev(g, dt)), ops::channel_rms_norm(xc, g), tol_for(dt));
        report("channel_rms_norm_silu", "C" + std::to_string(D) + " N" + std::to_string(R), dt,
               ops::cuda::channel_rms_norm_silu(dev(xc, dt), dev(g, DType::F32)),
               ops::silu(ops::channel_rms_norm(xc, g)), tol_for(dt, 1e-5));
      });
    }
}

void check_elementwise() {
  for (auto [R, D] : std::vector<std::array<int64_t, 2>>{{1, 3}, {17, 64}, {1000, 1536}})
    for (DType dt : {DType::F32, DType::BF16}) {
      const std::string sh = "R" + std::to_string(R) + " D" + std::to_string(D);
      guarded("elementwise " + sh, [&] {
        Tensor a = host_random({R, D}, -4.f, 4.f), b = host_random({R, D}), row = host_random({D});
        report("add", sh, dt, ops::add(dev(a, dt), dev(b, dt)), ops::add(a, b), tol_for(dt, 1e-6));
        report("add(row)", sh, dt, ops::add(dev(a, dt), dev(row, dt)), ops::add(a, row), tol_for(dt, 1e-6));
        report("mul(row)", sh, dt, ops::mul(dev(a, dt), dev(row, DType::F32)), ops::mul(a, row), tol_for(dt, 1e-6));
        report("axpby", sh, dt, ops::axpby(dev(a, dt), 0.3f, dev(b, dt), -1.7f), ops::axpby(a, 0.3f, b, -1.7f),
               tol_for(dt, 1e-6));
        report("scale", sh, dt, ops::scale(dev(a, dt), 2.5f), ops::scale(a, 2.5f), tol_for(dt, 1e-6));
        report("silu", sh, dt, ops::silu(dev(a, dt)), ops::silu(a), tol_for(dt, 1e-5));
        report("gelu_tanh", sh, dt, ops::gelu_tanh(dev(a, dt)), ops::gelu_tanh(a), tol_for(dt, 1e-5));
        report("gelu_erf", sh, dt, ops::gelu_erf(dev(a, dt)), ops::gelu_erf(a), tol_for(dt, 1e-5));
        report("clamp", sh, dt, ops::clamp(dev(a, dt), -1.f, 0.5f), ops::clamp(a, -1.f, 0.5f), tol_for(dt, 1e-6));
        // In-place ops on the f32 residual stream, with y and gate in either dtype.
        for (bool per_tok : {false, true}) {
          Tensor gate = per_tok ? host_random({R, D}) : host_random({D});
          Tensor xr = a.clone(), xd = dev(a, DType::F32);
          ops::gated_add_(xr, b, gate);
          ops::gated_add_(xd, dev(b, dt), dev(gate, dt));
          report(per_tok ? "gated_add_/tok" : "gated_add_", sh, dt, xd, xr, tol_for(dt, 1e-6));
        }
        Tensor xr = a.clone(), xd = dev(a, DType::F32);
        ops::add_(xr, b);
        ops::add_(xd, dev(b, dt));
        report("add_", sh, dt, xd, xr, tol_for(dt, 1e-6));
      });
    }
}

void check_rope() {
  for (auto [F, Hg, Wg, H, extra] : std::vector<std::array<int64_t, 5>>{{1, 1, 1, 1, 0}, {3, 4, 5, 2, 3}, {5, 6, 8, 12, 0}})
    for (DType dt : {DType::F32, DType::BF16}) {
      const int64_t D = 128, L = F * Hg * Wg + extra;
      const std::string sh = "L" + std::to_string(L) + " H" + std::to_string(H) + " grid " + std::to_string(F) + "x" +
                             std::to_string(Hg) + "x" + std::to_string(Wg);
      guarded("rope " + sh, [&] {
        Tensor x = host_random({L, H, D});
        report("rope_3d", sh, dt, ops::rope_3d(dev(x, dt), F, Hg, Wg), ops::rope_3d(x, F, Hg, Wg), tol_for(dt, 1e-5));
        // Fused q/k path: RMSNorm over the row of H·D, then RoPE per head.
        Tensor x2 = host_random({L, H * D}, -3.f, 3.f), w = host_random({H * D});
        Tensor ref = ops::rope_3d(ops::rms_norm(x2, w, 1e-6f).reshape({L, H, D}), F, Hg, Wg);
        report("rms_norm_rope", sh, dt, ops::cuda::rms_norm_rope(dev(x2, dt), dev(w, DType::F32), 1e-6f, H, F, Hg, Wg),
               ref, 2e-2);
      });
    }
  // The row kernel's general path: rows not a multiple of 4 (3 heads of 6) and rows longer than the
  // register-held path takes (160 heads of 128).
  for (auto [H, D] : std::vector<std::array<int64_t, 2>>{{3, 6}, {160, 128}})
    for (DType dt : {DType::F32, DType::BF16}) {
      const int64_t F = 2, Hg = 3, Wg = 2, L = F * Hg * Wg;
      const std::string sh = "L" + std::to_string(L) + " H" + std::to_string(H) + " D" + std::to_string(D);
      guarded("rms_norm_rope " + sh, [&] {
        Tensor x2 = host_random({L, H * D}, -3.f, 3.f), w = host_random({H * D});
        Tensor ref = ops::rope_3d(ops::rms_norm(x2, w, 1e-6f).reshape({L, H, D}), F, Hg, Wg);
        report("rms_norm_rope", sh, dt, ops::cuda::rms_norm_rope(dev(x2, dt), dev(w, DType::F32), 1e-6f, H, F, Hg, Wg),
               ref, 2e-2);
      });
    }
}

void check_attention() {
  struct Case {
    int64_t Lq, Lk, H, D;
    bool bias, mask;
  };
  const std::vector<Case> cases = {{1, 1, 1, 64, false, false},     {37, 53, 2, 64, false, false},
                                   {200, 512, 3, 128, false, false}, {130, 130, 2, 128, true, false},
                                   {64, 77, 4, 80, false, true},     {300, 300, 2, 128, true, true},
                                   {1024, 1024, 2, 128, false, false},
                                   // The flash kernel: one row, tails of both tiles (Lq, Lk not multiples
                                   // of its tiles), and enough keys for the automatic choice to take it.
                                   {1, 1, 1, 128, false, false},     {300, 77, 2, 128, false, false},
                                   {129, 4100, 3, 128, false, false},
                                   // More query tiles than CTAs resident at once (280 and 288 on 132
                                   // SMs), so that each persistent CTA runs two or three in turn: with
                                   // one key tile per row, and with three (an odd count, so the K/V
                                   // ring's stages and phases carry over unevenly between them).
                                   {2560, 77, 14, 128, false, false}, {2900, 500, 12, 128, false, false},
                                   // CLIP: the fixture (head dim 20, not cuDNN's, so the two-GEMM
                                   // path without bias or mask), the same at ViT-H's default of 16
                                   // heads (head dim 5), and ViT-H/14 itself (257 tokens, head dim 80).
                                   {5, 5, 4, 20, false, false},      {5, 5, 16, 5, false, false},
                                   {257, 257, 16, 80, false, false}};
  for (const Case& c : cases)
    for (DType dt : {DType::F32, DType::BF16}) {
      const std::string sh = "Lq" + std::to_string(c.Lq) + " Lk" + std::to_string(c.Lk) + " H" + std::to_string(c.H) +
                             " D" + std::to_string(c.D) + (c.bias ? " bias" : "") + (c.mask ? " mask" : "");
      guarded("attention " + sh, [&] {
        Tensor q = host_random({c.Lq, c.H, c.D}, -2.f, 2.f), k = host_random({c.Lk, c.H, c.D}, -2.f, 2.f),
               v = host_random({c.Lk, c.H, c.D});
        Tensor bias = c.bias ? host_random({c.H, c.Lq, c.Lk}) : Tensor();
        Tensor mask;
        if (c.mask) {
          std::vector<float> m(static_cast<size_t>(c.Lk));
          for (int64_t j = 0; j < c.Lk; ++j) m[static_cast<size_t>(j)] = (j % 5 == 3) ? 0.f : 1.f;
          mask = Tensor::from_f32(m, {c.Lk});
        }
        const float scale = 1.f / std::sqrt(float(c.D));
        Tensor ref = ops::attention(q, k, v, scale, bias, mask);
        Tensor db = c.bias ? dev(bias, DType::F32) : Tensor(), dm = c.mask ? mask.to(Device::CUDA) : Tensor();
        report("attention", sh, dt, ops::attention(dev(q, dt), dev(k, dt), dev(v, dt), scale, db, dm), ref, 2e-2);
        if (c.bias && !c.mask) {
          // cuDNN with the bias in its graph, where this cuDNN has an engine for it (else skipped).
          try {
            report("attention(cudnn+bias)", sh, dt,
                   ops::cuda::attention_with(ops::cuda::AttnImpl::Cudnn, dev(q, dt), dev(k, dt), dev(v, dt), scale,
                                             db, {}),
                   ref, 2e-2);
          } catch (const Error& e) {
            std::printf("skip attention(cudnn+bias) %s: %s\n", sh.c_str(), e.what());
          }
        }
        if (!c.bias && !c.mask) {
          report("attention(own)", sh, dt,
                 ops::cuda::attention_with(ops::cuda::AttnImpl::Own, dev(q, dt), dev(k, dt), dev(v, dt), scale, {}, {}),
                 ref, 2e-2);
          if (c.D == 128) {
            try {
              report("attention(flash)", sh, dt,
                     ops::cuda::attention_with(ops::cuda::AttnImpl::Flash, dev(q, dt), dev(k, dt), dev(v, dt), scale,
                                               {}, {}),
                     ref, 2e-2);
              // Every query tile's keys in 2 and 3 ranges, merged after: the path the automatic schedule
              // takes for a last, partly full round of CTAs (needs a key tile per range).
              for (int parts : {2, 3}) {
                if ((c.Lk + ops::cuda::fa3::kKeyTile - 1) / ops::cuda::fa3::kKeyTile < parts) continue;
                Tensor got;
                std::string why;
                if (!ops::cuda::flash_attention(dev(q, dt), dev(k, dt), dev(v, dt), scale, &got, &why, {parts}))
                  throw Error(ErrorKind::Unsupported, why);
                report("attention(flash " + std::to_string(parts) + " ranges)", sh, dt, got, ref, 2e-2);
              }
              // Every query tile in a CTA of its own, instead of pairs sharing their K/V loads.
              Tensor got;
              std::string why;
              if (!ops::cuda::flash_attention(dev(q, dt), dev(k, dt), dev(v, dt), scale, &got, &why, {0, false}))
                throw Error(ErrorKind::Unsupported, why);
              report("attention(flash single)", sh, dt, got, ref, 2e-2);
            } catch (const Error& e) {
              // Only a device or build without sm_90a may refuse; on a Hopper card that is a failure.
              const bool hopper = x2v::cuda::compute_capability() == 90;
              std::printf("%s attention(flash) %s: %s\n", hopper ? "FAIL" : "skip", sh.c_str(), e.what());
              if (hopper) ++g_fail;
            }
          }
#ifdef X2V_WITH_CUDNN
          // cuDNN refuses head dims that are not multiples of 8 by design; nothing to compare there.
          if (c.D % 8 == 0)
            report("attention(cudnn)", sh, dt,
                   ops::cuda::attention_with(ops::cuda::AttnImpl::Cudnn, dev(q, dt), dev(k, dt), dev(v, dt), scale,
                                             {}, {}),
                   ref, 2e-2);
#endif
        }
      });
    }
}

// The DiT's sequence length, where the flash kernel runs 171 key tiles per row: every row on the GPU,
// the first and last 64 rows against the CPU reference on those rows alone (rows are independent), and
// every output element finite (allocations are NaN-poisoned). With the 1.3B's 12 heads, 3 072 query
// tiles do not fill the last round of CTAs on an H100, so the last rows come from split key ranges.
void check_attention_long() {
  guarded("attention long", [&] {
    const int64_t L = 32760, H = 12, D = 128, n = 64;
    Tensor q = host_random({L, H, D}, -2.f, 2.f), k = host_random({L, H, D}, -2.f, 2.f), v = host_random({L, H, D});
    const float scale = 1.f / std::sqrt(float(D));
    Tensor got = ops::attention(dev(q, DType::BF16), dev(k, DType::BF16), dev(v, DType::BF16), scale).to(Device::CPU);
    const ops::cuda::fa3::Schedule sched = ops::cuda::flash_plan(L, L, H);
    std::printf("     attention long: %lld query tiles, %d CTAs at once (clusters of %d) on %d SMs, the last %lld in %d key "
                "ranges\n",
                static_cast<long long>(sched.units), sched.slots, sched.cluster, x2v::cuda::sm_count(),
                static_cast<long long>(sched.split_units()), sched.parts);
    const std::string sh = "Lq" + std::to_string(L) + " Lk" + std::to_string(L) + " H12 D128";
    for (int64_t r0 : {int64_t(0), L - n}) {
      Tensor ref = ops::attention(ops::narrow(q, 0, r0, r0 + n), k, v, scale);
      report("attention long rows", sh + " from " + std::to_string(r0), DType::BF16, ops::narrow(got, 0, r0, r0 + n),
             ref, 2e-2);
    }
    int64_t bad = 0;
    for (float x : got.to_vector()) bad += !std::isfinite(x);
    std::printf("%-4s %-24s %-34s %lld non-finite of %lld\n", bad ? "FAIL" : "ok", "attention long (all)", sh.c_str(),
                static_cast<long long>(bad), static_cast<long long>(got.numel()));
    (bad ? g_fail : g_pass)++;
  });
}

void check_layout() {
  for (DType dt : {DType::F32, DType::BF16}) {
    guarded("layout", [&] {
      Tensor x = host_random({3, 4, 5, 6});
      for (std::vector<int> p : {std::vector<int>{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}, {0, 2, 3, 1}}) {
        std::string sh = "[3,4,5,6] perm";
        for (int a : p) sh += " " + std::to_string(a);
        report("permute", sh, dt, ops::permute(dev(x, dt), p), ops::permute(x, p), 0.0);
      }
      Tensor y = host_random({3, 2, 5, 6}), z = host_random({3, 7, 5, 6});
      report("concat", "dim1 4+2+7", dt, ops::concat({dev(x, dt), dev(y, dt), dev(z, dt)}, 1), ops::concat({x, y, z}, 1),
             0.0);
      report("concat", "dim0", dt, ops::concat({dev(x, dt), dev(x, dt)}, 0), ops::concat({x, x}, 0), 0.0);
      report("concat", "dim-1", dt, ops::concat({dev(x, dt), dev(x, dt)}, -1), ops::concat({x, x}, -1), 0.0);
      report("narrow", "dim2 [1,4)", dt, ops::narrow(dev(x, dt), 2, 1, 4), ops::narrow(x, 2, 1, 4), 0.0);
      report("narrow", "dim0 [1,3)", dt, ops::narrow(dev(x, dt), 0, 1, 3), ops::narrow(x, 0, 1, 3), 0.0);
      report("narrow", "dim3 [5,6)", dt, ops::narrow(dev(x, dt), 3, 5, 6), ops::narrow(x, 3, 5, 6), 0.0);
      // index_select: T5's bias gather (a [64, 32] table by L² bucket indices), host and device index.
      Tensor table = host_random({64, 32});
      Tensor idx = Tensor::empty({700}, DType::I64);
      for (int64_t n = 0; n < 700; ++n) idx.data<int64_t>()[n] = (n * 7 + n / 13) % 32;
      report("index_select", "[64,32] dim1 by 700 (host index)", dt, ops::index_select(dev(table, dt), 1, idx),
             ops::index_select(table, 1, idx), 0.0);
      report("index_select", "[64,32] dim1 by 700 (device int32 index)", dt,
             ops::index_select(dev(table, dt), 1, idx.to(DType::I32).to(Device::CUDA)), ops::index_select(table, 1, idx),
             0.0);
      Tensor rows = Tensor::empty({5}, DType::I64);
      for (int64_t n = 0; n < 5; ++n) rows.data<int64_t>()[n] = (n * 2 + 2) % 3;
      report("index_select", "[3,4,5,6] dim0", dt, ops::index_select(dev(x, dt), 0, rows), ops::index_select(x, 0, rows),
             0.0);
      // CLIP: the class token before the patch tokens, and k out of the fused qkv rows.
      Tensor cls = host_random({1, 80}), patches = host_random({4, 80}), qkv = host_random({5, 240});
      report("concat", "[1,80]+[4,80] dim0", dt, ops::concat({dev(cls, dt), dev(patches, dt)}, 0),
             ops::concat({cls, patches}, 0), 0.0);
      report("narrow", "[5,240] dim1 [80,160)", dt, ops::narrow(dev(qkv, dt), 1, 80, 160), ops::narrow(qkv, 1, 80, 160),
             0.0);
    });
  }
}

void check_conv() {
  struct Case {
    int64_t C, T, H, W, O, kt, kh, kw;
    std::array<int, 3> stride;
    std::array<int, 6> pad;
  };
  const std::vector<Case> cases = {
      {4, 5, 6, 7, 8, 3, 3, 3, {1, 1, 1}, {2, 0, 1, 1, 1, 1}},      // causal 3x3x3
      {16, 3, 8, 10, 32, 1, 3, 3, {1, 1, 1}, {0, 0, 1, 1, 1, 1}},  // spatial only
      {8, 4, 8, 8, 8, 3, 1, 1, {1, 1, 1}, {2, 0, 0, 0, 0, 0}},     // time conv of the upsampler
      {16, 2, 8, 12, 24, 1, 2, 2, {1, 2, 2}, {0, 0, 0, 0, 0, 0}},  // patch embedding
      {8, 3, 9, 9, 8, 1, 3, 3, {1, 2, 2}, {0, 0, 0, 1, 0, 1}},     // downsample (ZeroPad2d (0,1,0,1))
      {32, 6, 16, 20, 32, 3, 3, 3, {1, 1, 1}, {2, 0, 1, 1, 1, 1}},
  };
  for (const Case& c : cases)
    for (DType dt : {DType::F32, DType::BF16}) {
      const std::string sh = "x[" + std::to_string(c.C) + "," + std::to_string(c.T) + "," + std::to_string(c.H) + "," +
                             std::to_string(c.W) + "] k" + std::to_string(c.kt) + std::to_string(c.kh) +
                             std::to_string(c.kw) + " O" + std::to_string(c.O);
      guarded("conv3d " + sh, [&] {
        Tensor x = host_random({c.C, c.T, c.H, c.W}), w = host_random({c.O, c.C, c.kt, c.kh, c.kw}, -0.3f, 0.3f),
               b = host_random({c.O});
        // f32 runs in TF32 on the tensor cores (PyTorch's default for convolutions): 2e-3.
        report("conv3d", sh, dt, ops::conv3d(dev(x, dt), dev(w, dt), dev(b, DType::F32), c.stride, c.pad),
               ops::conv3d(x, w, b, c.stride, c.pad), tol_for(dt, 2e-3));
      });
    }
  // A residual fused into the convolution (the VAE's residual blocks), each dtype, shapes that take the
  // epilogue path and shapes that do not.
  for (DType dt : {DType::F32, DType::BF16})
    for (const Case& c : {cases[0], cases[5]})
      guarded("conv3d residual", [&] {
        Tensor x = host_random({c.C, c.T, c.H, c.W}), w = host_random({c.O, c.C, c.kt, c.kh, c.kw}, -0.3f, 0.3f),
               b = host_random({c.O});
        const Tensor ref0 = ops::conv3d(x, w, b, c.stride, c.pad);
        Tensor r = host_random(ref0.shape());
        report("conv3d", "x[" + std::to_string(c.C) + "," + std::to_string(c.T) + ",..] + residual", dt,
               ops::conv3d(dev(x, dt), dev(w, dt), dev(b, DType::F32), c.stride, c.pad, dev(r, dt)),
               ops::conv3d(x, w, b, c.stride, c.pad, r), tol_for(dt, 2e-3));

      });
  // In place (cuDNN's epilogue reading and writing the same buffer where it fuses), each on a shape no
  // call has planned yet: the plan's timed trials must not write into the accumulator.
  for (DType dt : {DType::F32, DType::BF16})
    for (const Case& c : {Case{24, 5, 12, 14, 24, 3, 3, 3, {1, 1, 1}, {2, 0, 1, 1, 1, 1}},
                          Case{20, 4, 10, 9, 20, 3, 3, 3, {1, 1, 1}, {0, 0, 1, 1, 1, 1}}})
      guarded("conv3d_add_", [&] {
        Tensor x = host_random({c.C, c.T, c.H, c.W}), w = host_random({c.O, c.C, c.kt, c.kh, c.kw}, -0.3f, 0.3f),
               b = host_random({c.O});
        Tensor r = host_random(ops::conv3d(x, w, b, c.stride, c.pad).shape());
        Tensor acc = dev(r, dt);
        ops::conv3d_add_(acc, dev(x, dt), dev(w, dt), dev(b, DType::F32), c.stride, c.pad);
        report("conv3d_add_", "x[" + std::to_string(c.C) + "," + std::to_string(c.T) + ",..] in place, first call", dt,
               acc, ops::conv3d(x, w, b, c.stride, c.pad, r), tol_for(dt, 2e-3));
      });
  // Under the smallest scratch limit every shape must still find an algorithm (one that needs none).
  const size_t limit = ops::cuda::conv_workspace_limit();
  ops::cuda::set_conv_workspace_limit(1);
  for (DType dt : {DType::F32, DType::BF16})
    guarded("conv3d no scratch", [&] {
      Tensor x = host_random({32, 6, 16, 20}), w = host_random({24, 32, 3, 3, 3}, -0.3f, 0.3f), b = host_random({24});
      report("conv3d", "x[32,6,16,20] k333 O24 no scratch", dt,
             ops::conv3d(dev(x, dt), dev(w, dt), dev(b, DType::F32), {1, 1, 1}, {2, 0, 1, 1, 1, 1}),
             ops::conv3d(x, w, b, {1, 1, 1}, {2, 0, 1, 1, 1, 1}), tol_for(dt, 2e-3));
    });
  ops::cuda::set_conv_workspace_limit(limit);
  for (DType dt : {DType::F32, DType::BF16})
    guarded("conv2d/upsample", [&] {
      Tensor x = host_random({6, 9, 11}), w = host_random({5, 6, 3, 3}), b = host_random({5});
      report("conv2d", "x[6,9,11] k33 O5", dt, ops::conv2d(dev(x, dt), dev(w, dt), dev(b, dt), {1, 1}, {1, 1, 1, 1}),
             ops::conv2d(x, w, b, {1, 1}, {1, 1, 1, 1}), tol_for(dt, 2e-3));
    });
}

void check_upsample() {
  for (DType dt : {DType::F32, DType::BF16})
    guarded("upsample", [&] {
      Tensor x = host_random({3, 4, 5, 6});
      report("upsample_nearest2x", "[3,4,5,6] exact", dt, ops::upsample_nearest2x(dev(x, dt)),
             ops::upsample_nearest2x(x), 0.0);
    });
  // The sub-pixel upsampling conv's layout op, exactly: W = Wy − 1 a multiple of 4 takes the 16-byte
  // stores in both dtypes, W even only in f32, W odd never; a rank-5 input; the decoder's last shape
  // at a quarter of its height and width, one frame.
  for (DType dt : {DType::F32, DType::BF16})
    guarded("interleave_parities", [&] {
      for (const Shape& s : {Shape{8, 3, 5, 9}, Shape{12, 2, 4, 3}, Shape{4, 1, 7, 4}, Shape{8, 2, 3, 3, 17},
                             Shape{384, 1, 61, 105}}) {
        Tensor y = host_random(s);
        report("interleave_parities", shape_str(s) + " exact", dt, ops::interleave_parities(dev(y, dt)),
               ops::interleave_parities(y), 0.0);
      }
    });
  // The whole op, as the VAE decoder runs it (weights folded on the host in f32, then in the activation
  // dtype), against the CPU's upsample-then-3×3-conv with the unfolded weights.
  struct Up {
    int64_t C, T, H, W, O;
  };
  for (const Up& c : {Up{16, 2, 7, 9, 8}, Up{32, 4, 15, 26, 16}, Up{6, 1, 1, 1, 5}, Up{64, 3, 12, 20, 32}})
    for (DType dt : {DType::F32, DType::BF16}) {
      const std::string sh = "x[" + std::to_string(c.C) + "," + std::to_string(c.T) + "," + std::to_string(c.H) + "," +
                             std::to_string(c.W) + "] O" + std::to_string(c.O);
      guarded("upsample2x_conv3x3 " + sh, [&] {
        Tensor x = host_random({c.C, c.T, c.H, c.W}), w = host_random({c.O, c.C, 1, 3, 3}, -0.3f, 0.3f),
               b = host_random({c.O});
        const ops::UpsampleConvWeights f = ops::fold_upsample2x_conv3x3(w, b);
        report("upsample2x_conv3x3", sh, dt, ops::upsample2x_conv3x3(dev(x, dt), {dev(f.w, dt), dev(f.b, DType::F32)}),
               ops::conv3d(ops::upsample_nearest2x(x), w, b, {1, 1, 1}, {0, 0, 1, 1, 1, 1}), tol_for(dt, 2e-3));
        // Weights that live on the device (the bench's random store) fold to the same values.
        const ops::UpsampleConvWeights fd = ops::fold_upsample2x_conv3x3(dev(w, dt), dev(b, DType::F32));
        report("fold_upsample2x_conv3x3", sh + " from the device", dt, fd.w, f.w, 0.0);
      });
    }
}

#ifdef X2V_CHECK_DIT_FIXTURE
// The golden DiT fixtures on the GPU: bf16 matmul weights, the rest f32, against the outputs of the
// official code (every case and timestep of wan21/dit_*.io.safetensors).
void check_dit_fixture(const std::string& dir) {
  std::ifstream mf(dir + "/wan21/meta.json");
  if (!mf) {
    std::printf("skip dit fixture: %s/wan21/meta.json not found\n", dir.c_str());
    return;
  }
  nlohmann::json meta = nlohmann::json::parse(mf);
  for (std::string name : {"dit_t2v", "dit_i2v"}) {
    guarded("fixture " + name, [&] {
      models::wan::DitLoadOptions opt;
      opt.device = Device::CUDA;
      opt.matmul_dtype = DType::BF16;
      auto model = models::wan::DitModel::load(dir + "/wan21/" + name + ".safetensors", "", opt);
      io::SafeTensors io = io::SafeTensors::open(dir + "/wan21/" + name + ".io.safetensors");
      for (int ci = 0; ci < 4; ++ci) {
        const std::string cs = "case" + std::to_string(ci);
        if (!io.has(cs + ".x")) continue;
        Tensor x = io.get(cs + ".x").to(Device::CUDA), y;
        Tensor clip = io.has(cs + ".clip_fea") ? io.get(cs + ".clip_fea").to(Device::CUDA) : Tensor();
        if (io.has(cs + ".y")) y = io.get(cs + ".y").to(Device::CUDA);
        auto ctx = model.embed_context(io.get(cs + ".context").to(Device::CUDA), clip);
        for (int k = 0; k < 3; ++k) {
          const std::string tk = cs + ".t" + std::to_string(k);
          const float tval = meta[name].at(tk + ".timestep").get<float>();
          Tensor out = model.forward(x, y, Tensor::scalar_f32(tval), ctx);
          report("dit fixture", name + " " + tk, DType::BF16, out, io.get(tk + ".out"), 2e-2);
        }
      }
    });
  }
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (!cuda::available()) {
    std::printf("no CUDA device: nothing to check\n");
    return 2;
  }
  std::printf("device: %s, cuDNN %d\n", cuda::device_description().c_str(), ops::cuda::cudnn_version());
  // gpu_ops_check [FIXTURES_DIR] [--only FAMILY[,FAMILY...]]
  std::string fx = std::getenv("X2V_FIXTURES") ? std::getenv("X2V_FIXTURES") : "", only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--only" && i + 1 < argc)
      only = argv[++i];
    else
      fx = a;
  }
  auto want = [&](const char* f) {
    return only.empty() || ("," + only + ",").find("," + std::string(f) + ",") != std::string::npos;
  };
  cuda::set_poison_allocations(true);
  if (want("linear")) check_linear();
  if (want("norm")) check_norms();
  if (want("elementwise")) check_elementwise();
  if (want("rope")) check_rope();
  if (want("attention")) check_attention();
  if (want("attention")) check_attention_long();
  if (want("layout")) check_layout();
  if (want("conv")) check_conv();
  if (want("conv")) check_upsample();
#ifdef X2V_CHECK_DIT_FIXTURE
  if (!fx.empty() && want("fixture")) check_dit_fixture(fx);
#endif
  cuda::synchronize();
  std::printf("gpu_ops_check: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
