// conv3d / conv2d / upsample_nearest2x against naive double-precision loops written here.
#include <cmath>

#include "ops/conv.h"
#include "testutil.h"

using namespace x2v;
using test::random_tensor;

namespace {

struct Case {
  Shape x, w;  // [Cin,T,H,W], [Cout,Cin,kt,kh,kw]
  std::array<int, 3> stride;
  std::array<int, 6> pad;
  bool bias;
};

std::vector<double> naive_conv3d(const Tensor& x, const Tensor& w, const Tensor& b, const Case& c, Shape& out) {
  auto xv = x.to_vector(), wv = w.to_vector();
  std::vector<float> bv = b.defined() ? b.to_vector() : std::vector<float>();
  const int64_t Cin = c.x[0], T = c.x[1], H = c.x[2], W = c.x[3];
  const int64_t Co = c.w[0], kt = c.w[2], kh = c.w[3], kw = c.w[4];
  const int64_t To = (T + c.pad[0] + c.pad[1] - kt) / c.stride[0] + 1;
  const int64_t Ho = (H + c.pad[2] + c.pad[3] - kh) / c.stride[1] + 1;
  const int64_t Wo = (W + c.pad[4] + c.pad[5] - kw) / c.stride[2] + 1;
  out = {Co, To, Ho, Wo};
  std::vector<double> y(static_cast<size_t>(Co * To * Ho * Wo));
  for (int64_t o = 0; o < Co; ++o)
    for (int64_t t = 0; t < To; ++t)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          double s = bv.empty() ? 0.0 : bv[static_cast<size_t>(o)];
          for (int64_t ci = 0; ci < Cin; ++ci)
            for (int64_t a = 0; a < kt; ++a)
              for (int64_t p = 0; p < kh; ++p)
                for (int64_t q = 0; q < kw; ++q) {
                  const int64_t ti = t * c.stride[0] - c.pad[0] + a, yi = i * c.stride[1] - c.pad[2] + p,
                                xi = j * c.stride[2] - c.pad[4] + q;
                  if (ti < 0 || ti >= T || yi < 0 || yi >= H || xi < 0 || xi >= W) continue;
                  s += static_cast<double>(xv[static_cast<size_t>(((ci * T + ti) * H + yi) * W + xi)]) *
                       wv[static_cast<size_t>((((o * Cin + ci) * kt + a) * kh + p) * kw + q)];
                }
          y[static_cast<size_t>(((o * To + t) * Ho + i) * Wo + j)] = s;
        }
  return y;
}

void expect_matches(const Tensor& got, const Shape& shape, const std::vector<double>& ref, double tol) {
  ASSERT_EQ(got.shape(), shape);
  auto g = got.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_TRUE(std::isfinite(g[i])) << i;
    num += (g[i] - ref[i]) * (g[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  EXPECT_LE(std::sqrt(num / den), tol);
}

}  // namespace

TEST(Conv, Conv3dMatchesNaiveLoops) {
  const std::vector<Case> cases = {
      {{3, 5, 8, 9}, {4, 3, 3, 3, 3}, {1, 1, 1}, {2, 0, 1, 1, 1, 1}, true},    // causal conv of the VAE
      {{5, 4, 7, 6}, {6, 5, 1, 1, 1}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}, true},    // pointwise fast path
      {{4, 5, 6, 5}, {4, 4, 3, 1, 1}, {2, 1, 1}, {0, 0, 0, 0, 0, 0}, false},   // temporal stride-2 time_conv
      {{2, 3, 9, 11}, {3, 2, 1, 3, 3}, {1, 2, 2}, {0, 0, 0, 1, 0, 1}, true},   // VAE downsample (pad right/bottom)
      {{3, 4, 7, 8}, {5, 3, 2, 3, 2}, {1, 3, 2}, {1, 2, 2, 0, 0, 3}, true},    // asymmetric everything
      {{2, 2, 4, 4}, {2, 2, 1, 1, 1}, {1, 2, 2}, {0, 1, 0, 1, 1, 0}, false},   // 1x1x1 with stride and pad
      {{1, 1, 3, 3}, {2, 1, 1, 5, 5}, {1, 1, 1}, {0, 0, 2, 2, 2, 2}, true},    // kernel wider than the input
  };
  uint64_t seed = 10;
  for (const Case& c : cases) {
    Tensor x = random_tensor(c.x, seed++), w = random_tensor(c.w, seed++);
    Tensor b = c.bias ? random_tensor({c.w[0]}, seed++) : Tensor();
    Shape shape;
    auto ref = naive_conv3d(x, w, b, c, shape);
    SCOPED_TRACE(shape_str(c.x) + " * " + shape_str(c.w));
    expect_matches(ops::conv3d(x, w, b, c.stride, c.pad), shape, ref, 1e-6);
  }
}

// A residual given to conv3d is added to its output; a residual of another shape is refused.
TEST(Conv, Conv3dAddsAResidual) {
  Case c{{3, 5, 8, 9}, {4, 3, 3, 3, 3}, {1, 1, 1}, {2, 0, 1, 1, 1, 1}, true};
  Tensor x = random_tensor(c.x, 1), w = random_tensor(c.w, 2), b = random_tensor({4}, 3);
  Shape shape;
  auto ref = naive_conv3d(x, w, b, c, shape);
  Tensor r = random_tensor(shape, 4);
  const auto rv = r.to_vector();
  for (size_t i = 0; i < ref.size(); ++i) ref[i] += rv[i];
  expect_matches(ops::conv3d(x, w, b, c.stride, c.pad, r), shape, ref, 1e-6);
  EXPECT_THROW(ops::conv3d(x, w, b, c.stride, c.pad, random_tensor({4, 5, 8, 8}, 5)), Error);
}

// conv3d_add_ writes conv3d's residual form into the accumulator's own memory, bit for bit.
TEST(Conv, Conv3dAddInPlaceIsTheResidualForm) {
  Case c{{3, 5, 8, 9}, {4, 3, 3, 3, 3}, {1, 1, 1}, {2, 0, 1, 1, 1, 1}, true};
  Tensor x = random_tensor(c.x, 1), w = random_tensor(c.w, 2), b = random_tensor({4}, 3);
  Tensor r = random_tensor({4, 5, 8, 9}, 4);
  const Tensor want = ops::conv3d(x, w, b, c.stride, c.pad, r);
  Tensor acc = r.clone();
  const void* mem = acc.raw();
  ops::conv3d_add_(acc, x, w, b, c.stride, c.pad);
  EXPECT_EQ(acc.raw(), mem);
  test::expect_close(acc, want, 0.0, "conv3d_add_");
  Tensor wrong = random_tensor({4, 5, 8, 8}, 5);
  EXPECT_THROW(ops::conv3d_add_(wrong, x, w, b, c.stride, c.pad), Error);
}

TEST(Conv, Conv3dBandsOfRowsCoverLargeFrames) {
  // A frame big enough that the column buffer is split into row bands (K·Wo = 16·27·600 floats
  // per row: 32 MiB holds 32 of the 45 rows), so the second band starts mid-frame.
  Case c{{16, 3, 45, 600}, {3, 16, 3, 3, 3}, {1, 1, 1}, {2, 0, 1, 1, 1, 1}, true};
  Tensor x = random_tensor(c.x, 1), w = random_tensor(c.w, 2), b = random_tensor({3}, 3);
  Shape shape;
  auto ref = naive_conv3d(x, w, b, c, shape);
  expect_matches(ops::conv3d(x, w, b, c.stride, c.pad), shape, ref, 1e-6);
}

TEST(Conv, Conv2dIsOneFrameOfConv3d) {
  Tensor x = random_tensor({3, 9, 10}, 5), w = random_tensor({4, 3, 3, 3}, 6), b = random_tensor({4}, 7);
  Case c{{3, 1, 9, 10}, {4, 3, 1, 3, 3}, {1, 2, 1}, {0, 0, 0, 1, 1, 0}, true};
  Shape shape;
  auto ref = naive_conv3d(x.reshape({3, 1, 9, 10}), w.reshape({4, 3, 1, 3, 3}), b, c, shape);
  Tensor y = ops::conv2d(x, w, b, {2, 1}, {0, 1, 1, 0});
  ASSERT_EQ(shape, (Shape{4, 1, 4, 9}));
  expect_matches(y, {4, 4, 9}, ref, 1e-6);
}

TEST(Conv, UpsampleNearest2x) {
  Tensor x = random_tensor({2, 3, 5, 7}, 8);
  Tensor y = ops::upsample_nearest2x(x);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 10, 14}));
  auto xv = x.to_vector(), yv = y.to_vector();
  for (int64_t p = 0; p < 6; ++p)
    for (int64_t i = 0; i < 10; ++i)
      for (int64_t j = 0; j < 14; ++j)
        ASSERT_EQ(yv[static_cast<size_t>((p * 10 + i) * 14 + j)], xv[static_cast<size_t>((p * 5 + i / 2) * 7 + j / 2)]);
}

TEST(Conv, BadShapesAreClearErrors) {
  Tensor x = random_tensor({3, 2, 4, 4}, 1);
  EXPECT_THROW(ops::conv3d(x, random_tensor({2, 4, 1, 1, 1}, 2), {}, {1, 1, 1}, {}), Error);      // Cin mismatch
  EXPECT_THROW(ops::conv3d(x, random_tensor({2, 3, 3, 3, 3}, 2), {}, {1, 1, 1}, {}), Error);      // kernel > input
  EXPECT_THROW(ops::conv3d(x, random_tensor({2, 3, 1, 1, 1}, 2), random_tensor({3}, 3), {1, 1, 1}, {}), Error);
  EXPECT_THROW(ops::conv3d(x, random_tensor({2, 3, 1, 1, 1}, 2), {}, {0, 1, 1}, {}), Error);      // stride 0
  EXPECT_THROW(ops::conv3d(x, random_tensor({2, 3, 1, 1, 1}, 2), {}, {1, 1, 1}, {-1, 0, 0, 0, 0, 0}), Error);
  EXPECT_THROW(ops::conv2d(x, random_tensor({2, 3, 1, 1}, 2), {}, {1, 1}, {}), Error);           // rank
  try {
    ops::conv3d(x, random_tensor({2, 4, 1, 1, 1}, 2), {}, {1, 1, 1}, {});
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("conv3d"), std::string::npos);
  }
}
