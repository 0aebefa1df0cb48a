// Wan2.2's parameter-free VAE shortcuts (AvgDown3D, DupUp3D), now written with layout ops so that
// they run on any device, against loops written here from wan-spec §5.4's definition: pad in front
// to a multiple of ft, unfold each ft×fs×fs block into channels e = c·ft·fs² + it·fs² + ih·fs + iw,
// average (down) or repeat (up) along e, fold back.
#include "models/wan/vae_blocks.h"
#include "ops/ops.h"
#include "testutil.h"

using namespace x2v;
using namespace x2v::models::wan;

namespace {

std::vector<float> avg_down_loops(const Tensor& x, int64_t in, int64_t out, int64_t ft, int64_t fs) {
  const int64_t T = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t pad = (ft - T % ft) % ft, To = (T + pad) / ft, Ho = H / fs, Wo = W / fs;
  const int64_t F = ft * fs * fs, g = in * F / out;
  const std::vector<float> xv = x.to_vector();
  // The unfolded tensor first, as the definition builds it, then the group means in double.
  std::vector<double> u(static_cast<size_t>(in * F * To * Ho * Wo), 0.0);
  for (int64_t c = 0; c < in; ++c)
    for (int64_t t = 0; t < To * ft; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) {
          const int64_t src_t = t - pad;
          if (src_t < 0) continue;
          const int64_t e = c * F + (t % ft) * fs * fs + (h % fs) * fs + w % fs;
          u[static_cast<size_t>(((e * To + t / ft) * Ho + h / fs) * Wo + w / fs)] =
              xv[static_cast<size_t>(((c * T + src_t) * H + h) * W + w)];
        }
  const int64_t plane = To * Ho * Wo;
  std::vector<float> y(static_cast<size_t>(out * plane));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t p = 0; p < plane; ++p) {
      double s = 0;
      for (int64_t r = 0; r < g; ++r) s += u[static_cast<size_t>((o * g + r) * plane + p)];
      y[static_cast<size_t>(o * plane + p)] = static_cast<float>(s / double(g));
    }
  return y;
}

std::vector<float> dup_up_loops(const Tensor& x, int64_t in, int64_t out, int64_t ft, int64_t fs, bool first) {
  const int64_t T = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t F = ft * fs * fs, rep = out * F / in, To = T * ft, Ho = H * fs, Wo = W * fs;
  const int64_t skip = first ? ft - 1 : 0;
  const std::vector<float> xv = x.to_vector();
  std::vector<float> y;
  for (int64_t oc = 0; oc < out; ++oc)
    for (int64_t t = skip; t < To; ++t)
      for (int64_t h = 0; h < Ho; ++h)
        for (int64_t w = 0; w < Wo; ++w) {
          const int64_t e = oc * F + (t % ft) * fs * fs + (h % fs) * fs + w % fs;
          y.push_back(xv[static_cast<size_t>((((e / rep) * T + t / ft) * H + h / fs) * W + w / fs)]);
        }
  return y;
}

struct Case {
  int64_t in, out, ft, fs, T;
};

}  // namespace

TEST(VaeShortcuts, AvgDown3DMatchesDefinition) {
  // The released levels (160→320 2D, 320→640 3D, 640→640 3D, last level 1×1), scaled down, with
  // frame counts that need 0 or 1 padded frames, and groups that span several input channels.
  for (const Case& c : {Case{4, 8, 1, 2, 1}, Case{4, 8, 2, 2, 1}, Case{4, 8, 2, 2, 4}, Case{8, 8, 2, 2, 5},
                        Case{6, 6, 1, 1, 3}, Case{2, 1, 2, 2, 2}, Case{3, 6, 2, 2, 3}}) {
    const int64_t H = 4 * c.fs, W = 6 * c.fs;
    Tensor x = test::random_tensor({c.in, c.T, H, W}, 100 + c.T, -2.f, 2.f);
    vae::AvgDown3D d{c.in, c.out, c.ft, c.fs};
    Tensor y = d.forward(x);
    const int64_t To = (c.T + (c.ft - c.T % c.ft) % c.ft) / c.ft;
    ASSERT_EQ(y.shape(), (Shape{c.out, To, H / c.fs, W / c.fs}));
    const double err = test::rel_l2(y.to_vector(), avg_down_loops(x, c.in, c.out, c.ft, c.fs));
    EXPECT_LT(err, 1e-6) << c.in << "->" << c.out << " ft" << c.ft << " fs" << c.fs << " T" << c.T;
  }
}

TEST(VaeShortcuts, DupUp3DMatchesDefinition) {
  for (const Case& c : {Case{8, 4, 1, 2, 1}, Case{8, 8, 2, 2, 1}, Case{8, 4, 2, 2, 3}, Case{4, 8, 2, 2, 2},
                        Case{6, 6, 1, 1, 2}})
    for (bool first : {false, true}) {
      Tensor x = test::random_tensor({c.in, c.T, 3, 5}, 200 + c.T);
      vae::DupUp3D u{c.in, c.out, c.ft, c.fs};
      Tensor y = u.forward(x, first);
      const int64_t To = c.T * c.ft - (first ? c.ft - 1 : 0);
      ASSERT_EQ(y.shape(), (Shape{c.out, To, 3 * c.fs, 5 * c.fs}));
      // A gather: exact.
      test::expect_close(y, Tensor::from_f32(dup_up_loops(x, c.in, c.out, c.ft, c.fs, first), y.shape()), 0.0,
                         "dup_up " + std::to_string(c.in) + "->" + std::to_string(c.out));
    }
}
