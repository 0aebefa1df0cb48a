// Building blocks shared by the Wan2.1 and Wan2.2 VAEs (wan-spec §5.1), each a weights struct named
// like the checkpoint plus a forward over one chunk of frames [C, n, H, W].
//
// Temporal state: the reference threads a flat list of caches (feat_cache) through the network and
// each cached conv takes the next slot (feat_idx). `Caches` is that list: a chunk claims the slots in
// the same order every time, so slot k always belongs to the same conv.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.h"
#include "io/weights.h"
#include "models/wan/load_options.h"

namespace x2v::models::wan::vae {

// What a temporal conv remembers between chunks: up to the last two frames of its input (of its
// partial sums for a PartialSumConv).
struct CacheSlot {
  Tensor frames;         // [C, ≤2, H, W], undefined before the first chunk
  bool started = false;  // the resamplers treat the very first chunk differently
};

class Caches {
 public:
  void start_chunk() { next_ = 0; }
  CacheSlot& next();

 private:
  std::vector<CacheSlot> slots_;
  size_t next_ = 0;
};

struct Conv {
  Tensor w, b;  // w [Cout, Cin, kt, kh, kw] (2D convs are stored with kt = 1), b [Cout]
  // w in opt.matmul_dtype, b in f32, both on opt.device.
  static Conv load(const io::WeightStore& ws, const std::string& prefix, const Shape& w_shape,
                   const VaeLoadOptions& opt = {});
  int64_t out_channels() const { return w.size(0); }
};

// CausalConv3d with kernel 3 in time (padding 1): two frames of context in front, taken from the
// cache where it has them and zero otherwise. Updates the cache to the last two input frames.
// `residual`, if given, is added to the output (fused into the convolution where the backend can).
Tensor causal_conv(const Conv& c, Tensor x, CacheSlot& cache, Tensor residual = {});
// A CausalConv3d (kernel kt ≥ 2 in time) that carries partial sums between chunks instead of input
// frames, for a conv much narrower at its output than its input: the heads (the Wan2.1 decoder's is
// 96 → 3 channels at full resolution, where two cached input frames are 146 MiB at 480p in bf16).
// Output frame t is Σ_k W_k ∗ x[t − (kt − 1) + k]: one conv of the chunk's own frames gives every
// tap's share P_k (tap k's weights are output channels k·Cout .. (k + 1)·Cout − 1, the bias is on the
// last tap), and y[t] = Σ_k P_k[t − (kt − 1) + k], where shares of frames before the chunk come from
// the cache (the last kt − 1 frames of P_0 .. P_{kt−2}; zero before the first chunk). The shares are
// summed in f32 and the result has x's dtype.
struct PartialSumConv {
  Tensor w, b;  // w [kt·Cout, Cin, 1, kh, kw] in opt.matmul_dtype, b [kt·Cout] in f32
  int64_t taps = 0;
  // From a checkpoint's conv of w_shape [Cout, Cin, kt, kh, kw].
  static PartialSumConv load(const io::WeightStore& ws, const std::string& prefix, const Shape& w_shape,
                             const VaeLoadOptions& opt = {});
  Tensor forward(const Tensor& x, CacheSlot& cache) const;
};
// CausalConv3d 1×1×1: no temporal context, no cache.
Tensor pointwise_conv(const Conv& c, const Tensor& x);

// RMS_norm → SiLU (the pre-activation every residual branch and head starts with), one fused op.
Tensor norm_silu(const Tensor& x, const Tensor& gamma);

struct ResidualBlock {
  Tensor gamma1, gamma2;
  Conv conv1, conv2;
  std::optional<Conv> shortcut;  // 1×1×1 when in ≠ out
  static ResidualBlock load(const io::WeightStore& ws, const std::string& prefix, int64_t in, int64_t out,
                            const VaeLoadOptions& opt = {});
  Tensor forward(Tensor x, Caches& caches) const;
};

// Single-head self-attention over the pixels of each frame separately.
struct AttentionBlock {
  Tensor gamma;
  Tensor qkv_w, qkv_b, proj_w, proj_b;  // 1×1 conv weights kept as linear [out, in]
  static AttentionBlock load(const io::WeightStore& ws, const std::string& prefix, int64_t C,
                             const VaeLoadOptions& opt = {});
  Tensor forward(const Tensor& x) const;
};

struct Resample {
  enum class Mode { Upsample2d, Upsample3d, Downsample2d, Downsample3d };
  Mode mode;
  // resample.1, the 3×3 conv: [Cout, Cin, 1, 3, 3] when downsampling; when upsampling, its sub-pixel
  // form (ops::fold_upsample2x_conv3x3: [4·Cout, Cin, 1, 2, 2], bias [4·Cout]), made at load.
  Conv spatial;
  std::optional<Conv> time;     // time_conv of the 3d modes
  // `up_out`: output channels of the upsampling conv (Wan2.1: C/2, Wan2.2: C).
  static Resample load(const io::WeightStore& ws, const std::string& prefix, int64_t C, Mode mode, int64_t up_out,
                       const VaeLoadOptions& opt = {});
  Tensor forward(const Tensor& x, Caches& caches) const;
};

using Layer = std::variant<ResidualBlock, AttentionBlock, Resample>;
// Layers take their input by value: a caller that moves it in lets a residual block reuse its memory.
Tensor forward(const Layer& l, Tensor x, Caches& caches);

// Wan2.2's parameter-free shortcuts (wan-spec §5.4), written with layout ops so that they run on
// any device. AvgDown3D: zero frames in front up to a multiple of ft, each ft×fs×fs block unfolded
// into channels (e = c·ft·fs² + it·fs² + ih·fs + iw), and groups of in·ft·fs²/out consecutive
// unfolded channels averaged. DupUp3D: each channel repeated out·ft·fs²/in times and the unfolded
// channels folded back into ft×fs×fs blocks (dropping the first ft − 1 frames of the first chunk).
struct AvgDown3D {
  int64_t in, out, ft, fs;
  Tensor forward(const Tensor& x) const;
};
struct DupUp3D {
  int64_t in, out, ft, fs;
  Tensor forward(const Tensor& x, bool first_chunk) const;
};

// 2×2 pixel (un)patchify of Wan2.2: [3, T, H, W] ↔ [12, T, H/2, W/2], channel c·4 + col·2 + row.
Tensor patchify2(const Tensor& x);
Tensor unpatchify2(const Tensor& x);

}  // namespace x2v::models::wan::vae
