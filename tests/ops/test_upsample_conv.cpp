// The sub-pixel form of "nearest ×2 upsampling, then a 3×3 conv with padding 1" (ops::upsample2x_conv3x3)
// against the two ops it replaces, and its layout op (ops::interleave_parities) against its definition.
#include <cmath>
#include <cstring>
#include <limits>

#include "core/dtype.h"
#include "ops/conv.h"
#include "ops/layout.h"
#include "testutil.h"

using namespace x2v;
using test::random_tensor;

namespace {

// A freed heap block of the output's size, full of NaN: an op whose output lands there (same-sized
// requests are served from the block just freed) shows any element it leaves unwritten as NaN.
void poison_heap(size_t bytes) {
  Tensor junk = Tensor::empty({static_cast<int64_t>(bytes / sizeof(float))}, DType::F32);
  float* p = junk.data<float>();
  for (int64_t i = 0; i < junk.numel(); ++i) p[i] = std::numeric_limits<float>::quiet_NaN();
}

// Every element finite and within tol·max|ref| of the reference, and the relative L2 within tol.
void expect_elementwise(const Tensor& got, const Tensor& ref, double tol, const std::string& what) {
  ASSERT_EQ(got.shape(), ref.shape()) << what;
  const auto g = got.to_vector(), r = ref.to_vector();
  double scale = 0;
  for (float v : r) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_TRUE(std::isfinite(g[i])) << what << ": element " << i << " not written";
    ASSERT_LE(std::fabs(static_cast<double>(g[i]) - r[i]), tol * scale) << what << ": element " << i;
  }
  EXPECT_LE(test::rel_l2(g, r), tol) << what;
}

}  // namespace

TEST(UpsampleConv, SubPixelFormEqualsUpsampleThenConv) {
  struct Case {
    int64_t Cin, T, H, W, Cout;
    bool bias, five_d;
  };
  // Odd sizes, single rows and columns (every output pixel then touches the zero border), Cin ≠ Cout.
  const std::vector<Case> cases = {
      {3, 3, 5, 7, 4, true, true}, {5, 2, 1, 1, 2, true, false}, {2, 1, 9, 2, 3, false, true},
      {4, 4, 6, 11, 1, true, false}, {1, 2, 3, 1, 5, true, true}, {7, 2, 13, 5, 6, false, false},
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE("x [" + std::to_string(c.Cin) + ", " + std::to_string(c.T) + ", " + std::to_string(c.H) + ", " +
                 std::to_string(c.W) + "] to " + std::to_string(c.Cout) + (c.bias ? " with bias" : ""));
    Tensor x = random_tensor({c.Cin, c.T, c.H, c.W}, seed++);
    Tensor w = random_tensor({c.Cout, c.Cin, 1, 3, 3}, seed++), b = c.bias ? random_tensor({c.Cout}, seed++) : Tensor();
    const Tensor ref = ops::conv3d(ops::upsample_nearest2x(x), w, b, {1, 1, 1}, {0, 0, 1, 1, 1, 1});
    const ops::UpsampleConvWeights f =
        ops::fold_upsample2x_conv3x3(c.five_d ? w : w.reshape({c.Cout, c.Cin, 3, 3}), b);
    ASSERT_EQ(f.w.shape(), (Shape{4 * c.Cout, c.Cin, 1, 2, 2}));
    EXPECT_EQ(f.b.defined(), c.bias);
    poison_heap(ref.nbytes());
    expect_elementwise(ops::upsample2x_conv3x3(x, f), ref, 1e-5, "upsample2x_conv3x3");
  }
}

// Each parity's 2×2 kernel is a partition of the 3×3 one: the taps {w0}, {w1 + w2} (parity 0) and
// {w0 + w1}, {w2} (parity 1) along each axis, output channel (2·py + px)·Cout + c.
TEST(UpsampleConv, FoldedTapsAndBias) {
  Tensor w = random_tensor({2, 3, 3, 3}, 7), b = random_tensor({2}, 8);
  const ops::UpsampleConvWeights f = ops::fold_upsample2x_conv3x3(w.to(DType::BF16), b);
  const auto wv = w.to(DType::BF16).to_vector(), fv = f.w.to_vector(), bv = b.to_vector(), fb = f.b.to_vector();
  ASSERT_EQ(f.w.dtype(), DType::F32);
  const int groups[2][2][3] = {{{1, 0, 0}, {0, 1, 1}}, {{1, 1, 0}, {0, 0, 1}}};  // [parity][tap][3×3 index]
  for (int py = 0; py < 2; ++py)
    for (int px = 0; px < 2; ++px)
      for (int co = 0; co < 2; ++co) {
        EXPECT_EQ(fb[static_cast<size_t>((2 * py + px) * 2 + co)], bv[static_cast<size_t>(co)]);
        for (int ci = 0; ci < 3; ++ci)
          for (int ky = 0; ky < 2; ++ky)
            for (int kx = 0; kx < 2; ++kx) {
              double want = 0;
              for (int a = 0; a < 3; ++a)
                for (int e = 0; e < 3; ++e)
                  if (groups[py][ky][a] && groups[px][kx][e]) want += wv[static_cast<size_t>(((co * 3 + ci) * 3 + a) * 3 + e)];
              const size_t at = static_cast<size_t>(((((2 * py + px) * 2 + co) * 3 + ci) * 2 + ky) * 2 + kx);
              EXPECT_NEAR(fv[at], want, 1e-6) << py << px << co << ci << ky << kx;
            }
      }
  EXPECT_FALSE(ops::fold_upsample2x_conv3x3(w, Tensor()).b.defined());
}

TEST(UpsampleConv, InterleaveParitiesLayout) {
  for (DType dt : {DType::F32, DType::BF16})
    for (const Shape& s : {Shape{8, 3, 4, 6}, Shape{4, 2, 5}, Shape{12, 2, 3, 2, 7}, Shape{4, 1, 2, 2}}) {
      SCOPED_TRACE(shape_str(s) + " " + dtype_name(dt));
      Tensor y = random_tensor(s, 21).to(dt);
      const int64_t C = s[0] / 4, Hy = s[s.size() - 2], Wy = s.back(), planes = y.numel() / (s[0] * Hy * Wy);
      Shape os = s;
      os[0] = C, os[os.size() - 2] = 2 * (Hy - 1), os.back() = 2 * (Wy - 1);
      poison_heap(static_cast<size_t>(C * planes * 4 * (Hy - 1) * (Wy - 1)) * dtype_size(dt));
      Tensor out = ops::interleave_parities(y);
      ASSERT_EQ(out.shape(), os);
      ASSERT_EQ(out.dtype(), dt);
      const auto yv = y.to_vector(), ov = out.to_vector();
      for (int64_t c = 0; c < C; ++c)
        for (int64_t p = 0; p < planes; ++p)
          for (int64_t r = 0; r < 2 * (Hy - 1); ++r)
            for (int64_t q = 0; q < 2 * (Wy - 1); ++q) {
              const int64_t py = r % 2, px = q % 2, i = r / 2, j = q / 2;
              const float want = yv[static_cast<size_t>(((((2 * py + px) * C + c) * planes + p) * Hy + i + py) * Wy + j + px)];
              ASSERT_EQ(ov[static_cast<size_t>(((c * planes + p) * 2 * (Hy - 1) + r) * 2 * (Wy - 1) + q)], want)
                  << c << " " << p << " " << r << " " << q;
            }
    }
  // One source row or column: nothing to interleave, an empty output.
  EXPECT_EQ(ops::interleave_parities(random_tensor({4, 1, 1, 5}, 3)).shape(), (Shape{1, 1, 0, 8}));
}

TEST(UpsampleConv, BadShapesAreClearErrors) {
  Tensor x = random_tensor({3, 2, 4, 4}, 1);
  test::expect_error([&] { ops::fold_upsample2x_conv3x3(random_tensor({2, 3, 2, 2}, 2), Tensor()); },
                     ErrorKind::InvalidArgument, {"fold_upsample2x_conv3x3", "[2, 3, 2, 2]"});
  test::expect_error([&] { ops::fold_upsample2x_conv3x3(random_tensor({2, 3, 3, 3}, 2), random_tensor({3}, 3)); },
                     ErrorKind::InvalidArgument, {"bias"});
  // The unfolded 3×3 weight is not the sub-pixel form.
  test::expect_error([&] { ops::upsample2x_conv3x3(x, {random_tensor({2, 3, 1, 3, 3}, 4), Tensor()}); },
                     ErrorKind::InvalidArgument, {"upsample2x_conv3x3", "folded"});
  const ops::UpsampleConvWeights f = ops::fold_upsample2x_conv3x3(random_tensor({2, 5, 3, 3}, 5), Tensor());
  EXPECT_THROW(ops::upsample2x_conv3x3(x, f), Error);  // Cin 3 against 5
  test::expect_error([&] { ops::interleave_parities(random_tensor({6, 2, 3, 3}, 6)); }, ErrorKind::InvalidArgument,
                     {"interleave_parities", "[6, 2, 3, 3]"});
  EXPECT_THROW(ops::interleave_parities(random_tensor({4, 3}, 7)), Error);
}
