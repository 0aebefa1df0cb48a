// The VAE's temporal blocks run chunk by chunk with caches equal the closed forms of wan-spec §5.2
// computed over the whole sequence at once, and the caches never hold more than two frames.
#include <map>
#include <optional>

#include "models/wan/vae_blocks.h"
#include "ops/ops.h"
#include "testutil.h"

using namespace x2v;
using namespace x2v::models::wan;
using test::random_tensor;

namespace {

// Frames [t0, t1) of x [C, T, H, W].
Tensor frames(const Tensor& x, int64_t t0, int64_t t1) { return ops::narrow(x, 1, t0, t1); }

// Runs `step` over chunks of the given sizes and concatenates the outputs along time.
template <class F>
Tensor chunked(const Tensor& x, const std::vector<int64_t>& sizes, vae::Caches& caches, F step) {
  std::vector<Tensor> outs;
  int64_t t = 0;
  for (int64_t n : sizes) {
    caches.start_chunk();
    outs.push_back(step(frames(x, t, t + n)));
    t += n;
  }
  return ops::concat(outs, 1);
}

// Named tensors in memory, for the blocks' load functions.
struct Store final : io::WeightStore {
  std::map<std::string, Tensor> t;
  std::string format() const override { return "test"; }
  std::string source() const override { return "test store"; }
  std::vector<std::string> names() const override {
    std::vector<std::string> v;
    for (const auto& [n, x] : t) v.push_back(n);
    return v;
  }
  std::optional<io::TensorMeta> find(const std::string& n) const override {
    auto it = t.find(n);
    if (it == t.end()) return std::nullopt;
    return io::TensorMeta{it->second.dtype(), it->second.shape()};
  }
  Tensor load(const std::string& n) const override { return t.at(n); }
};

}  // namespace

TEST(VaeBlocks, CachedCausalConvEqualsWholeSequenceConv) {
  const int64_t C = 3, H = 5, W = 6;
  Tensor x = random_tensor({C, 9, H, W}, 1);
  vae::Conv conv{random_tensor({4, C, 3, 3, 3}, 2), random_tensor({4}, 3)};
  vae::CacheSlot slot;
  std::vector<Tensor> outs;
  int64_t t = 0;
  for (int64_t n : {1, 4, 1, 1, 2}) {  // the encoder's [1, 4, ...] and the decoder's 1-frame chunks
    outs.push_back(vae::causal_conv(conv, frames(x, t, t + n), slot));
    t += n;
    ASSERT_LE(slot.frames.size(1), 2);  // memory: never more than two frames of context
    test::expect_close(slot.frames, frames(x, std::max<int64_t>(0, t - 2), t), 0.0, "cache = last frames");
  }
  Tensor whole = ops::conv3d(x, conv.w, conv.b, {1, 1, 1}, {2, 0, 1, 1, 1, 1});
  test::expect_close(ops::concat(outs, 1), whole, 1e-6, "chunked causal conv");
}

TEST(VaeBlocks, PartialSumConvEqualsWholeSequenceConv) {
  // The heads' form: per-tap shares carried between chunks instead of input frames. Chunks of 1, 4,
  // 1, 1, 2 frames (a first chunk shorter than the context), against one causal conv of everything.
  const int64_t C = 5, Co = 3, H = 4, W = 7;
  Store store;
  store.t["head.weight"] = random_tensor({Co, C, 3, 3, 3}, 20);
  store.t["head.bias"] = random_tensor({Co}, 21);
  const vae::PartialSumConv head = vae::PartialSumConv::load(store, "head", {Co, C, 3, 3, 3});
  Tensor x = random_tensor({C, 9, H, W}, 22);
  vae::CacheSlot slot;
  std::vector<Tensor> outs;
  int64_t t = 0;
  for (int64_t n : {1, 4, 1, 1, 2}) {
    outs.push_back(head.forward(frames(x, t, t + n), slot));
    t += n;
    ASSERT_EQ(slot.frames.shape(), (Shape{2 * Co, 2, H, W}));  // two taps' shares of two frames
  }
  Tensor whole = ops::conv3d(x, store.t["head.weight"], store.t["head.bias"], {1, 1, 1}, {2, 0, 1, 1, 1, 1});
  test::expect_close(ops::concat(outs, 1), whole, 1e-6, "chunked partial-sum conv");
}

TEST(VaeBlocks, Downsample3dClosedForm) {
  // Output 0 = s[0] (no temporal conv); output k = time_conv(s[2k−2], s[2k−1], s[2k]), s = spatial path.
  const int64_t C = 3;
  Tensor x = random_tensor({C, 9, 8, 6}, 4);
  vae::Resample r{vae::Resample::Mode::Downsample3d, {random_tensor({C, C, 1, 3, 3}, 5), random_tensor({C}, 6)},
                  vae::Conv{random_tensor({C, C, 3, 1, 1}, 7), random_tensor({C}, 8)}};
  vae::Caches caches;
  Tensor got = chunked(x, {1, 4, 4}, caches, [&](const Tensor& c) { return r.forward(c, caches); });
  Tensor s = ops::conv3d(x, r.spatial.w, r.spatial.b, {1, 2, 2}, {0, 0, 0, 1, 0, 1});
  Tensor rest = ops::conv3d(frames(s, 0, 9), r.time->w, r.time->b, {2, 1, 1}, {});  // windows (0,1,2), (2,3,4), ...
  Tensor ref = ops::concat({frames(s, 0, 1), rest}, 1);
  ASSERT_EQ(got.shape(), (Shape{C, 5, 4, 3}));
  test::expect_close(got, ref, 1e-6, "downsample3d");
}

TEST(VaeBlocks, Upsample3dClosedForm) {
  // Frame 0 passes without the temporal conv; frames 1.. run a causal time_conv with zeros (not frame 0)
  // in front, each giving two frames (channel halves interleaved), then the spatial path.
  // The layer keeps the 3×3 conv in its sub-pixel form; the closed form uses the 3×3 weights.
  const int64_t C = 4;
  Tensor x = random_tensor({C, 4, 3, 5}, 9);
  const Tensor w3 = random_tensor({C / 2, C, 1, 3, 3}, 10), b3 = random_tensor({C / 2}, 11);
  const ops::UpsampleConvWeights f = ops::fold_upsample2x_conv3x3(w3, b3);
  vae::Resample r{vae::Resample::Mode::Upsample3d, {f.w, f.b},
                  vae::Conv{random_tensor({2 * C, C, 3, 1, 1}, 12), random_tensor({2 * C}, 13)}};
  vae::Caches caches;
  Tensor got = chunked(x, {1, 1, 1, 1}, caches, [&](const Tensor& c) { return r.forward(c, caches); });
  Tensor tc = ops::conv3d(frames(x, 1, 4), r.time->w, r.time->b, {1, 1, 1}, {2, 0, 0, 0, 0, 0});  // [2C, 3, H, W]
  std::vector<Tensor> seq{frames(x, 0, 1)};
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t half = 0; half < 2; ++half) seq.push_back(frames(ops::narrow(tc, 0, half * C, (half + 1) * C), i, i + 1));
  Tensor up = ops::upsample_nearest2x(ops::concat(seq, 1));
  Tensor ref = ops::conv3d(up, w3, b3, {1, 1, 1}, {0, 0, 1, 1, 1, 1});
  ASSERT_EQ(got.shape(), (Shape{C / 2, 7, 6, 10}));
  test::expect_close(got, ref, 1e-6, "upsample3d");
}

TEST(VaeBlocks, Upsample2dLoadsTheSubPixelForm) {
  // Through Resample::load, as the decoders build it (Wan2.1: C → C/2; Wan2.2 keeps C): the file's
  // 3×3 weights in, nearest ×2 then the 3×3 conv out, and nothing cached between chunks.
  Store store;
  const int64_t C = 6, Co = 3;
  store.t["up.resample.1.weight"] = random_tensor({Co, C, 3, 3}, 15);
  store.t["up.resample.1.bias"] = random_tensor({Co}, 16);
  const vae::Resample r = vae::Resample::load(store, "up", C, vae::Resample::Mode::Upsample2d, Co);
  ASSERT_EQ(r.spatial.w.shape(), (Shape{4 * Co, C, 1, 2, 2}));
  Tensor x = random_tensor({C, 3, 5, 7}, 17);
  vae::Caches caches;
  Tensor got = chunked(x, {1, 2}, caches, [&](const Tensor& c) { return r.forward(c, caches); });
  Tensor ref = ops::conv3d(ops::upsample_nearest2x(x), store.t["up.resample.1.weight"].reshape({Co, C, 1, 3, 3}),
                           store.t["up.resample.1.bias"], {1, 1, 1}, {0, 0, 1, 1, 1, 1});
  ASSERT_EQ(got.shape(), (Shape{Co, 3, 10, 14}));
  test::expect_close(got, ref, 1e-6, "upsample2d");
}

TEST(VaeBlocks, PatchifyLayout) {
  // Channel c·4 + col·2 + row holds pixel (2h + row, 2w + col) of channel c; unpatchify inverts it.
  Tensor x = random_tensor({3, 2, 4, 6}, 14);
  Tensor p = vae::patchify2(x);
  ASSERT_EQ(p.shape(), (Shape{12, 2, 2, 3}));
  auto xv = x.to_vector(), pv = p.to_vector();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t col = 0; col < 2; ++col)
      for (int64_t row = 0; row < 2; ++row)
        for (int64_t t = 0; t < 2; ++t)
          for (int64_t h = 0; h < 2; ++h)
            for (int64_t w = 0; w < 3; ++w)
              ASSERT_EQ(pv[static_cast<size_t>((((c * 4 + col * 2 + row) * 2 + t) * 2 + h) * 3 + w)],
                        xv[static_cast<size_t>(((c * 2 + t) * 4 + 2 * h + row) * 6 + 2 * w + col)]);
  test::expect_close(vae::unpatchify2(p), x, 0.0, "unpatchify(patchify(x))");
}
