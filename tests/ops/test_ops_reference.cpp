// The CPU ops against naive double-precision loops written here independently.
#include <cmath>

#include "ops/ops.h"
#include "testutil.h"

using namespace x2v;
using test::random_tensor;

namespace {
void expect_vec_close(const Tensor& got, const std::vector<double>& ref, double tol) {
  auto g = got.to_vector();
  ASSERT_EQ(g.size(), ref.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_TRUE(std::isfinite(g[i])) << i;
    num += (g[i] - ref[i]) * (g[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  EXPECT_LE(std::sqrt(num / den), tol);
}
double gelu_tanh_ref(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }
}  // namespace

TEST(Ops, LinearWithBiasAndActivations) {
  for (auto [M, K, N] : {std::tuple{1, 3, 5}, {7, 64, 33}, {130, 96, 17}}) {
    Tensor x = random_tensor({M, K}, 1), w = random_tensor({N, K}, 2), b = random_tensor({N}, 3);
    auto xv = x.to_vector(), wv = w.to_vector(), bv = b.to_vector();
    for (ops::Act act : {ops::Act::None, ops::Act::GeluTanh, ops::Act::SiLU, ops::Act::GeluErf}) {
      std::vector<double> ref(static_cast<size_t>(M * N));
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
          double s = bv[static_cast<size_t>(j)];
          for (int k = 0; k < K; ++k) s += static_cast<double>(xv[static_cast<size_t>(i * K + k)]) * wv[static_cast<size_t>(j * K + k)];
          if (act == ops::Act::GeluTanh) s = gelu_tanh_ref(s);
          if (act == ops::Act::SiLU) s = s / (1 + std::exp(-s));
          if (act == ops::Act::GeluErf) s = 0.5 * s * (1 + std::erf(s / std::sqrt(2.0)));
          ref[static_cast<size_t>(i * N + j)] = s;
        }
      expect_vec_close(ops::linear(x, w, b, act), ref, 1e-6);
    }
  }
  EXPECT_THROW(ops::linear(random_tensor({2, 3}, 1), random_tensor({4, 5}, 2)), Error);
}

TEST(Ops, LayerNormVariants) {
  const int R = 9, D = 40;
  Tensor x = random_tensor({R, D}, 4, -3, 5), w = random_tensor({D}, 5), b = random_tensor({D}, 6);
  Tensor sh = random_tensor({D}, 7), sc = random_tensor({D}, 8);
  auto xv = x.to_vector(), wv = w.to_vector(), bv = b.to_vector(), shv = sh.to_vector(), scv = sc.to_vector();
  std::vector<double> ln(R * D), mod(R * D), rms(R * D);
  for (int i = 0; i < R; ++i) {
    double m = 0, v = 0, ss = 0;
    for (int j = 0; j < D; ++j) m += xv[static_cast<size_t>(i * D + j)];
    m /= D;
    for (int j = 0; j < D; ++j) {
      double d = xv[static_cast<size_t>(i * D + j)] - m;
      v += d * d;
      ss += static_cast<double>(xv[static_cast<size_t>(i * D + j)]) * xv[static_cast<size_t>(i * D + j)];
    }
    v /= D;
    for (int j = 0; j < D; ++j) {
      size_t k = static_cast<size_t>(i * D + j);
      double n = (xv[k] - m) / std::sqrt(v + 1e-6);
      ln[k] = n * wv[static_cast<size_t>(j)] + bv[static_cast<size_t>(j)];
      mod[k] = n * (1 + scv[static_cast<size_t>(j)]) + shv[static_cast<size_t>(j)];
      rms[k] = xv[k] / std::sqrt(ss / D + 1e-6) * wv[static_cast<size_t>(j)];
    }
  }
  expect_vec_close(ops::layer_norm(x, w, b, 1e-6f), ln, 1e-6);
  expect_vec_close(ops::layer_norm_modulate(x, sh, sc, 1e-6f), mod, 1e-6);
  expect_vec_close(ops::rms_norm(x, w, 1e-6f), rms, 1e-6);
}

TEST(Ops, ChannelRmsNorm) {
  const int C = 6, N = 300;
  Tensor x = random_tensor({C, N}, 9), g = random_tensor({C}, 10);
  auto xv = x.to_vector(), gv = g.to_vector();
  std::vector<double> ref(C * N);
  for (int n = 0; n < N; ++n) {
    double ss = 0;
    for (int c = 0; c < C; ++c) ss += static_cast<double>(xv[static_cast<size_t>(c * N + n)]) * xv[static_cast<size_t>(c * N + n)];
    for (int c = 0; c < C; ++c)
      ref[static_cast<size_t>(c * N + n)] = xv[static_cast<size_t>(c * N + n)] / std::max(std::sqrt(ss), 1e-12) * std::sqrt(C) * gv[static_cast<size_t>(c)];
  }
  expect_vec_close(ops::channel_rms_norm(x, g), ref, 1e-6);
}

TEST(Ops, AttentionWithBiasAndMask) {
  const int Lq = 300, Lk = 37, H = 3, D = 16;
  Tensor q = random_tensor({Lq, H, D}, 11), k = random_tensor({Lk, H, D}, 12), v = random_tensor({Lk, H, D}, 13);
  Tensor bias = random_tensor({H, Lq, Lk}, 14);
  std::vector<float> m(Lk, 1.f);
  for (int j = 30; j < Lk; ++j) m[static_cast<size_t>(j)] = 0.f;
  Tensor mask = Tensor::from_f32(m, {Lk});
  auto qv = q.to_vector(), kv = k.to_vector(), vv = v.to_vector(), bv = bias.to_vector();
  for (bool with_extras : {false, true}) {
    std::vector<double> ref(Lq * H * D);
    const double sc = 0.3;
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < Lq; ++i) {
        std::vector<double> s(Lk);
        double mx = -1e300;
        for (int j = 0; j < Lk; ++j) {
          double d = 0;
          for (int c = 0; c < D; ++c) d += static_cast<double>(qv[static_cast<size_t>((i * H + h) * D + c)]) * kv[static_cast<size_t>((j * H + h) * D + c)];
          s[static_cast<size_t>(j)] = sc * d + (with_extras ? bv[static_cast<size_t>((h * Lq + i) * Lk + j)] : 0);
          if (with_extras && j >= 30) s[static_cast<size_t>(j)] = -1e300;
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double sum = 0;
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (int c = 0; c < D; ++c) {
          double o = 0;
          for (int j = 0; j < Lk; ++j) o += s[static_cast<size_t>(j)] / sum * vv[static_cast<size_t>((j * H + h) * D + c)];
          ref[static_cast<size_t>((i * H + h) * D + c)] = o;
        }
      }
    Tensor out = with_extras ? ops::attention(q, k, v, 0.3f, bias, mask) : ops::attention(q, k, v, 0.3f);
    expect_vec_close(out, ref, 1e-5);
  }
}

TEST(Ops, Rope3dMatchesComplexRotation) {
  const int64_t F = 2, Hg = 3, Wg = 4, H = 2, D = 128, L = F * Hg * Wg + 2;  // two padded tokens
  Tensor x = random_tensor({L, H, D}, 15);
  auto xv = x.to_vector();
  std::vector<double> ref(xv.begin(), xv.end());
  // Independent formulation: per axis tables as the reference builds them (d = 44, 42, 42).
  auto freqs = [](int64_t d) {
    std::vector<double> f;
    for (int64_t j = 0; j < d; j += 2) f.push_back(1.0 / std::pow(10000.0, static_cast<double>(j) / static_cast<double>(d)));
    return f;
  };
  auto ft = freqs(44), fh = freqs(42), fw = freqs(42);
  for (int64_t t = 0; t < F * Hg * Wg; ++t) {
    int64_t f = t / (Hg * Wg), hh = (t / Wg) % Hg, ww = t % Wg;
    std::vector<double> ang;
    for (double a : ft) ang.push_back(f * a);
    for (double a : fh) ang.push_back(hh * a);
    for (double a : fw) ang.push_back(ww * a);
    ASSERT_EQ(ang.size(), 64u);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t c = 0; c < 64; ++c) {
        size_t i = static_cast<size_t>((t * H + h) * D + 2 * c);
        double re = xv[i], im = xv[i + 1], cs = std::cos(ang[static_cast<size_t>(c)]), sn = std::sin(ang[static_cast<size_t>(c)]);
        ref[i] = re * cs - im * sn;
        ref[i + 1] = re * sn + im * cs;
      }
  }
  expect_vec_close(ops::rope_3d(x, F, Hg, Wg), ref, 1e-7);
}

TEST(Ops, PermuteConcatNarrow) {
  Tensor x = random_tensor({2, 3, 4, 5}, 16);
  auto xv = x.to_vector();
  Tensor p = ops::permute(x, {2, 0, 3, 1});
  ASSERT_EQ(p.shape(), (Shape{4, 2, 5, 3}));
  auto pv = p.to_vector();
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c)
        for (int d = 0; d < 5; ++d)
          ASSERT_EQ(pv[static_cast<size_t>(((c * 2 + a) * 5 + d) * 3 + b)], xv[static_cast<size_t>(((a * 3 + b) * 4 + c) * 5 + d)]);
  Tensor y = random_tensor({2, 1, 4, 5}, 17);
  Tensor cat = ops::concat({x, y}, 1);
  ASSERT_EQ(cat.shape(), (Shape{2, 4, 4, 5}));
  Tensor back = ops::narrow(cat, 1, 0, 3);
  EXPECT_EQ(back.to_vector(), xv);
  EXPECT_EQ(ops::narrow(cat, 1, 3, 4).to_vector(), y.to_vector());
  EXPECT_THROW(ops::concat({x, random_tensor({2, 3, 4, 6}, 1)}, 1), Error);
}

TEST(Ops, ElementwiseAndGatedResidual) {
  Tensor a = random_tensor({4, 8}, 18), b = random_tensor({4, 8}, 19), row = random_tensor({8}, 20);
  auto av = a.to_vector(), bv = b.to_vector(), rv = row.to_vector();
  std::vector<double> ref(32);
  for (size_t i = 0; i < 32; ++i) ref[i] = av[i] + bv[i] * rv[i % 8];
  Tensor r = a.clone();
  ops::gated_add_(r, b, row);
  expect_vec_close(r, ref, 1e-7);
  for (size_t i = 0; i < 32; ++i) ref[i] = av[i] * rv[i % 8];
  expect_vec_close(ops::mul(a, row), ref, 1e-7);
  for (size_t i = 0; i < 32; ++i) ref[i] = 2 * av[i] - 0.5 * bv[i];
  expect_vec_close(ops::axpby(a, 2.f, b, -0.5f), ref, 1e-7);
}

// The fused residual + norm forms against a double loop: v = x + y·gate (+ y2·gate2), each update
// rounded to f32 as the stream is; add_layer_norm returns LN(v)·w + b and leaves x as it was,
// add_layer_norm_modulate writes v into x and returns LN(v)·(1 + scale) + shift. Gates as one row, per
// token, and absent; no update at all; a second update with each kind of gate.
TEST(Ops, AddLayerNormFusedForms) {
  const int R = 6, D = 24;
  Tensor w = random_tensor({D}, 21), b = random_tensor({D}, 22), sh = random_tensor({R, D}, 23), sc = random_tensor({R, D}, 24);
  auto make_gate = [&](int kind, uint64_t seed) {  // 1: none (1), 2: a row, 3: per token
    return kind == 2 ? random_tensor({D}, seed) : kind == 3 ? random_tensor({R, D}, seed) : Tensor();
  };
  for (int gate_kind = 0; gate_kind < 4; ++gate_kind)  // 0: no y
    for (int gate2_kind = 0; gate2_kind < 4; ++gate2_kind) {  // 0: no second update
      if (gate_kind == 0 && gate2_kind != 0) continue;
      Tensor x = random_tensor({R, D}, 25, -2, 3), y = random_tensor({R, D}, 26), y2 = random_tensor({R, D}, 29);
      Tensor gate = make_gate(gate_kind, 27), gate2 = make_gate(gate2_kind, 28);
      auto xv = x.to_vector(), yv = y.to_vector(), y2v = y2.to_vector();
      auto gv = gate.defined() ? gate.to_vector() : std::vector<float>();
      auto g2v = gate2.defined() ? gate2.to_vector() : std::vector<float>();
      auto wv = w.to_vector(), bv = b.to_vector(), shv = sh.to_vector(), scv = sc.to_vector();
      auto gate_at = [&](int kind, const std::vector<float>& g, size_t k, int j) {
        return kind == 2 ? double(g[static_cast<size_t>(j)]) : kind == 3 ? double(g[k]) : 1.0;
      };
      // one: x + y·gate; two: that + y2·gate2 (what modulate applies); norms of each.
      std::vector<float> one(R * D), two(R * D);
      std::vector<double> ln(R * D), mod(R * D);
      auto norm = [&](const std::vector<float>& v, int i, auto&& put) {
        double m = 0, var = 0;
        for (int j = 0; j < D; ++j) m += v[static_cast<size_t>(i * D + j)];
        m /= D;
        for (int j = 0; j < D; ++j) var += (v[static_cast<size_t>(i * D + j)] - m) * (v[static_cast<size_t>(i * D + j)] - m);
        var /= D;
        for (int j = 0; j < D; ++j) put(static_cast<size_t>(i * D + j), j, (v[static_cast<size_t>(i * D + j)] - m) / std::sqrt(var + 1e-6));
      };
      for (int i = 0; i < R; ++i) {
        for (int j = 0; j < D; ++j) {
          const size_t k = static_cast<size_t>(i * D + j);
          one[k] = gate_kind == 0 ? xv[k] : static_cast<float>(xv[k] + static_cast<float>(yv[k] * gate_at(gate_kind, gv, k, j)));
          two[k] = gate2_kind == 0 ? one[k] : static_cast<float>(one[k] + static_cast<float>(y2v[k] * gate_at(gate2_kind, g2v, k, j)));
        }
        norm(one, i, [&](size_t k, int j, double n) { ln[k] = n * wv[static_cast<size_t>(j)] + bv[static_cast<size_t>(j)]; });
        norm(two, i, [&](size_t k, int, double n) { mod[k] = n * (1 + scv[k]) + shv[k]; });
      }
      const ops::Residual r1{gate_kind == 0 ? Tensor() : y, gate}, r2{gate2_kind == 0 ? Tensor() : y2, gate2};
      Tensor x1 = x.clone(), x2 = x.clone();
      expect_vec_close(ops::add_layer_norm(x1, r1, w, b, 1e-6f, DType::F32), ln, 1e-6);
      EXPECT_EQ(x1.to_vector(), xv);  // not written
      Tensor o = ops::add_layer_norm_modulate(x2, r1, r2, sh, sc, 1e-6f, DType::BF16);
      EXPECT_EQ(o.dtype(), DType::BF16);
      expect_vec_close(o, mod, 4e-3);  // bf16 output
      expect_vec_close(x2, std::vector<double>(two.begin(), two.end()), 1e-7);
    }
  Tensor x = random_tensor({R, D}, 1);
  EXPECT_THROW(ops::add_layer_norm(x, {random_tensor({R, D + 1}, 2), {}}, w, b, 1e-6f, DType::F32), Error);
  EXPECT_THROW(ops::add_layer_norm_modulate(x, {random_tensor({R, D}, 2), {}}, {random_tensor({R, D}, 3), random_tensor({D + 1}, 4)},
                                            sh, sc, 1e-6f, DType::F32),
               Error);
  EXPECT_THROW(ops::add_layer_norm_modulate(x, {}, {}, random_tensor({3}, 3), random_tensor({3}, 4), 1e-6f, DType::F32), Error);
}

// rms_norm_rope = rope_3d of the row-RMS-normed x split into heads (CPU: f32, exact composition),
// checked against an independent double-precision normalization followed by rope_3d.
TEST(Ops, RmsNormRopeIsNormThenRotation) {
  const int64_t F = 2, Hg = 2, Wg = 3, H = 2, D = 12, L = F * Hg * Wg;
  Tensor x = random_tensor({L, H * D}, 31), w = random_tensor({H * D}, 32, 0.5, 1.5);
  auto xv = x.to_vector(), wv = w.to_vector();
  std::vector<float> n(xv.size());
  for (int64_t t = 0; t < L; ++t) {
    double ss = 0;
    for (int64_t j = 0; j < H * D; ++j) ss += static_cast<double>(xv[static_cast<size_t>(t * H * D + j)]) * xv[static_cast<size_t>(t * H * D + j)];
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(H * D) + 1e-6);
    for (int64_t j = 0; j < H * D; ++j)
      n[static_cast<size_t>(t * H * D + j)] = static_cast<float>(xv[static_cast<size_t>(t * H * D + j)] * r * wv[static_cast<size_t>(j)]);
  }
  Tensor ref = ops::rope_3d(Tensor::from_f32(n, {L, H, D}), F, Hg, Wg);
  auto rv = ref.to_vector();
  expect_vec_close(ops::rms_norm_rope(x, w, 1e-6f, H, F, Hg, Wg), std::vector<double>(rv.begin(), rv.end()), 1e-6);
  EXPECT_THROW(ops::rms_norm_rope(x, w, 1e-6f, H, F, Hg, Wg + 1), Error);  // grid does not cover the tokens
  EXPECT_THROW(ops::rms_norm_rope(x, w, 1e-6f, 5, F, Hg, Wg), Error);      // heads do not divide the row
}

// index_select against direct indexing, along each dim, with int32 and int64 indices (repeats and
// any order); out-of-range and malformed indices are refused.
TEST(Ops, IndexSelectGathersAlongADim) {
  Tensor x = random_tensor({3, 4, 5}, 41);
  const auto xv = x.to_vector();
  const std::vector<int64_t> pick = {2, 0, 2, 1};
  for (int dim = 0; dim < 3; ++dim)
    for (DType it : {DType::I64, DType::I32}) {
      std::vector<int64_t> p;
      for (int64_t v : pick) p.push_back(v % x.size(dim));
      Tensor idx = Tensor::empty({static_cast<int64_t>(p.size())}, DType::I64);
      std::copy(p.begin(), p.end(), idx.data<int64_t>());
      Tensor y = ops::index_select(x, dim, idx.to(it));
      Shape os = x.shape();
      os[static_cast<size_t>(dim)] = static_cast<int64_t>(p.size());
      ASSERT_EQ(y.shape(), os);
      const auto yv = y.to_vector();
      for (int64_t a = 0; a < os[0]; ++a)
        for (int64_t b = 0; b < os[1]; ++b)
          for (int64_t c = 0; c < os[2]; ++c) {
            int64_t s[3] = {a, b, c};
            s[dim] = p[static_cast<size_t>(s[dim])];
            ASSERT_EQ(yv[static_cast<size_t>((a * os[1] + b) * os[2] + c)], xv[static_cast<size_t>((s[0] * 4 + s[1]) * 5 + s[2])]);
          }
    }
  Tensor bad = Tensor::empty({1}, DType::I64);
  bad.data<int64_t>()[0] = 4;
  EXPECT_THROW(ops::index_select(x, 1, bad), Error);  // dim 1 has 4 entries
  bad.data<int64_t>()[0] = -1;
  EXPECT_THROW(ops::index_select(x, 0, bad), Error);
  EXPECT_THROW(ops::index_select(x, 3, bad), Error);
  EXPECT_THROW(ops::index_select(x, 0, random_tensor({1}, 1)), Error);  // a float index
}
