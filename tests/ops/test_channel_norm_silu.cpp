// The fused VAE norm → SiLU against the two ops it replaces (bit for bit on the CPU) and against a
// plain double-precision loop written from its definition.
#include <cmath>

#include "ops/ops.h"
#include "testutil.h"

using namespace x2v;

namespace {

// y[c, n] = silu(x[c, n] / max(‖x[:, n]‖, 1e-12) · sqrt(C) · gamma[c]), in double.
std::vector<float> naive(const Tensor& x, const Tensor& gamma) {
  const int64_t C = x.size(0), N = x.numel() / C;
  const std::vector<float> xv = x.to_vector(), g = gamma.to_vector();
  std::vector<float> y(xv.size());
  for (int64_t n = 0; n < N; ++n) {
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += double(xv[size_t(c * N + n)]) * xv[size_t(c * N + n)];
    const double inv = std::sqrt(double(C)) / std::max(std::sqrt(ss), 1e-12);
    for (int64_t c = 0; c < C; ++c) {
      const double v = xv[size_t(c * N + n)] * inv * g[size_t(c)];
      y[size_t(c * N + n)] = static_cast<float>(v / (1.0 + std::exp(-v)));
    }
  }
  return y;
}

}  // namespace

TEST(ChannelRmsNormSilu, EqualsNormThenSiluExactly) {
  // Shapes around the CPU kernel's 256-position blocks, one channel, and a VAE-like chunk.
  for (const Shape& s : {Shape{1, 7}, Shape{3, 255}, Shape{5, 257}, Shape{16, 2, 9, 31}, Shape{96, 1, 8, 12}}) {
    Tensor x = test::random_tensor(s, 11, -3.f, 3.f), g = test::random_tensor({s[0]}, 12, 0.5f, 1.5f);
    Tensor fused = ops::channel_rms_norm_silu(x, g);
    Tensor two = ops::silu(ops::channel_rms_norm(x, g));
    ASSERT_EQ(fused.shape(), x.shape());
    test::expect_close(fused, two, 0.0, "fused vs norm+silu " + shape_str(s));
    EXPECT_LT(test::rel_l2(fused.to_vector(), naive(x, g)), 1e-6) << shape_str(s);
  }
}

TEST(ChannelRmsNormSilu, ZeroColumnStaysFinite) {
  // An all-zero pixel hits the 1e-12 floor instead of dividing by zero.
  Tensor x = Tensor::zeros({4, 3}, DType::F32), g = test::random_tensor({4}, 13);
  for (float v : ops::channel_rms_norm_silu(x, g).to_vector()) EXPECT_EQ(v, 0.f);
}

TEST(ChannelRmsNormSilu, RejectsMismatchedGamma) {
  test::expect_error([] { ops::channel_rms_norm_silu(Tensor::zeros({4, 3}, DType::F32), Tensor::zeros({3}, DType::F32)); },
                     ErrorKind::InvalidArgument, {"channel_rms_norm_silu", "gamma"});
}
