// resize_bicubic against a direct evaluation of the interpolation formula in double precision:
// out(y, x) = Σ_m Σ_n K(sy - m) K(sx - n) in(clamp(m), clamp(n)), with the Keys kernel K (A = -0.75)
// and s = (o + 0.5) · in/out - 0.5 (align_corners=false).
#include <cmath>

#include "ops/resize.h"
#include "testutil.h"

using namespace x2v;

namespace {

double keys(double d) {
  const double a = -0.75, x = std::fabs(d);
  if (x <= 1) return (a + 2) * x * x * x - (a + 3) * x * x + 1;
  if (x < 2) return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
  return 0;
}

std::vector<double> naive(const Tensor& x, int64_t oh, int64_t ow) {
  const int64_t C = x.size(0), H = x.size(1), W = x.size(2);
  auto v = x.to_vector();
  std::vector<double> out(static_cast<size_t>(C * oh * ow));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        const double sy = (i + 0.5) * static_cast<double>(H) / oh - 0.5;
        const double sx = (j + 0.5) * static_cast<double>(W) / ow - 0.5;
        double s = 0;
        for (int64_t m = static_cast<int64_t>(std::floor(sy)) - 1; m <= static_cast<int64_t>(std::floor(sy)) + 2; ++m)
          for (int64_t n = static_cast<int64_t>(std::floor(sx)) - 1; n <= static_cast<int64_t>(std::floor(sx)) + 2; ++n) {
            const int64_t mm = std::min<int64_t>(std::max<int64_t>(m, 0), H - 1);
            const int64_t nn = std::min<int64_t>(std::max<int64_t>(n, 0), W - 1);
            s += keys(sy - m) * keys(sx - n) * v[static_cast<size_t>((c * H + mm) * W + nn)];
          }
        out[static_cast<size_t>((c * oh + i) * ow + j)] = s;
      }
  return out;
}

void check(const Shape& in, int64_t oh, int64_t ow, uint64_t seed) {
  Tensor x = test::random_tensor(in, seed, -1.f, 1.f);
  Tensor y = ops::resize_bicubic(x, oh, ow);
  ASSERT_EQ(y.shape(), (Shape{in[0], oh, ow}));
  auto g = y.to_vector();
  auto r = naive(x, oh, ow);
  double num = 0, den = 0, worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_TRUE(std::isfinite(g[i])) << i;
    num += (g[i] - r[i]) * (g[i] - r[i]);
    den += r[i] * r[i];
    worst = std::max(worst, std::fabs(g[i] - r[i]));
  }
  // PyTorch (and x2v) compute the source coordinate in f32, which moves it by ~1e-7 of the input
  // extent; a wrong kernel constant, offset or border rule gives errors around 1e-2.
  EXPECT_LE(std::sqrt(num / den), 2e-5) << shape_str(in) << " -> " << oh << "x" << ow;
  EXPECT_LE(worst, 5e-5) << shape_str(in) << " -> " << oh << "x" << ow;
}

}  // namespace

TEST(ResizeBicubic, MatchesFormulaUpDownNonSquare) {
  check({3, 40, 36}, 28, 28, 1);    // the CLIP fixture's shape: downsample, non-square input
  check({2, 7, 5}, 23, 17, 2);      // upsample both axes (border taps clamped)
  check({1, 30, 9}, 11, 20, 3);     // down in y, up in x
  check({3, 1, 1}, 4, 6, 4);        // a single pixel spreads to a constant
  check({1, 64, 48}, 224, 224, 5);  // the real CLIP input size
}

TEST(ResizeBicubic, SameSizeIsIdentityAndConstantsStay) {
  Tensor x = test::random_tensor({2, 9, 13}, 7);
  Tensor y = ops::resize_bicubic(x, 9, 13);
  EXPECT_EQ(y.to_vector(), x.to_vector());
  Tensor c = Tensor::from_f32(std::vector<float>(3 * 10 * 7, 0.375f), {3, 10, 7});
  for (float v : ops::resize_bicubic(c, 31, 4).to_vector()) EXPECT_NEAR(v, 0.375f, 1e-6f);
}

TEST(ResizeBicubic, OvershootsLikePyTorchNoClamp) {
  // A step edge upsampled with the A = -0.75 kernel rings outside [0, 1]; nothing clamps it.
  std::vector<float> v(8, 0.f);
  for (int i = 4; i < 8; ++i) v[static_cast<size_t>(i)] = 1.f;
  auto y = ops::resize_bicubic(Tensor::from_f32(v, {1, 1, 8}), 1, 32).to_vector();
  EXPECT_LT(*std::min_element(y.begin(), y.end()), -0.01f);
  EXPECT_GT(*std::max_element(y.begin(), y.end()), 1.01f);
}

TEST(ResizeBicubic, RejectsBadShapes) {
  EXPECT_THROW(ops::resize_bicubic(test::random_tensor({4, 4}, 1), 2, 2), Error);
  EXPECT_THROW(ops::resize_bicubic(test::random_tensor({1, 4, 4}, 1), 0, 2), Error);
  EXPECT_THROW(ops::resize_bicubic(test::random_tensor({1, 4, 4}, 1), 2, 1 << 20), Error);
}
