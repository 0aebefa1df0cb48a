// The umT5-XXL text encoder as Wan uses it (wan/modules/t5.py, T5Encoder; docs/wan-spec.md §3):
// token embedding → blocks of [RMSNorm → self-attention with a relative position bias, no 1/√d
// scaling] and [RMSNorm → gated tanh-GELU FFN], each residual → final RMSNorm.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weights.h"
#include "models/wan/encoder_keys.h"
#include "models/wan/load_options.h"

namespace x2v::models::wan {

class Tokenizer;

struct T5Config {
  int64_t vocab = 256384;
  int64_t dim = 4096;
  int64_t dim_attn = 4096;
  int64_t dim_ffn = 10240;
  int64_t num_heads = 64;
  int64_t num_layers = 24;
  int64_t num_buckets = 32;
  bool shared_pos = false;  // one relative-position table for all blocks (classic T5) or one per block (umT5)
  int64_t max_dist = 128;   // T5RelativeEmbedding's max_dist
  float eps = 1e-6f;

  int64_t head_dim() const { return dim_attn / num_heads; }
  void validate(const std::string& where) const;
};

// The configuration for a weight store (official names): sizes, layer count, vocabulary, bucket
// and head counts and shared_pos come from the tensor shapes; `user` (the --config fields of the
// reference constructor: dim, dim_attn, dim_ffn, num_buckets, num_heads, num_layers, shared_pos,
// vocab) must agree with them. Defaults are umT5-XXL's.
T5Config infer_t5_config(const io::WeightStore& w, EncoderConfigJson user = {});

struct T5Block {
  Tensor norm1, q, k, v, o;  // attention: q/k/v [dim_attn, dim], o [dim, dim_attn]
  Tensor norm2, gate, fc1, fc2;  // FFN: gate/fc1 [dim_ffn, dim], fc2 [dim, dim_ffn]
  Tensor pos;  // relative-position table [num_buckets, num_heads] (undefined when shared)
};

struct T5Weights {
  Tensor token_embedding;  // [vocab, dim], always on the host in the file's dtype (rows are gathered there)
  std::vector<T5Block> blocks;
  Tensor pos;   // shared table, only with shared_pos
  Tensor norm;  // [dim]
};

class T5Encoder {
 public:
  // `w` uses the official names (wrap other layouts with t5_official_view). With the default
  // options the weights stay on the host in their stored dtype (bf16 for the official file); see
  // ModelLoadOptions for a device.
  T5Encoder(const io::WeightStore& w, const T5Config& cfg, const T5LoadOptions& opt = {});
  // Opens a checkpoint (.pth, .safetensors, index), in any supported naming, and infers the config.
  static T5Encoder load(const std::string& path, EncoderConfigJson user = {}, const T5LoadOptions& opt = {});

  const T5Config& config() const { return cfg_; }
  Device device() const { return opt_.device; }

  // ids [L] int64 and mask [L] (1 = real token, 0 = padding) → hidden states [L, dim] f32 on the
  // model's device, every position computed (padded queries too, as the reference). ids and mask
  // may live anywhere; they are read on the host.
  Tensor forward(const Tensor& ids, const Tensor& mask) const;

  // What the Wan pipelines pass to the DiT for one prompt: clean, tokenize (EOS, pad to 512), run
  // the encoder with the mask, keep the first L_real rows → [L_real, dim]. Computed on the L_real
  // real tokens only, which gives the same rows (pad keys are masked; see t5.cpp).
  Tensor encode(const Tokenizer& tok, const std::string& prompt) const;

  // The pipelines' trimming: the first sum(mask) rows of `out`.
  static Tensor trim(const Tensor& out, const Tensor& mask);

  // bias[h, i, j] = table[bucket(j - i), h] for L positions (a host loop; the tests' reference for
  // what forward gathers).
  Tensor position_bias(const Tensor& table, int64_t L) const;
  // index[i·L + j] = bucket(j − i): [L·L] int64 on the host, the gather index of every block's bias.
  Tensor bucket_index(int64_t L) const;
  // T5's bidirectional bucket of a relative position (key − query), with the reference's f32 log.
  static int64_t bucket(int64_t rel, int64_t num_buckets, int64_t max_dist);

 private:
  Tensor embed(const Tensor& ids) const;
  Tensor attention(const T5Block& b, const Tensor& x, const Tensor& mask, const Tensor& bias) const;
  Tensor ffn(const T5Block& b, const Tensor& x) const;
  DType act() const;

  T5Config cfg_;
  T5LoadOptions opt_;
  T5Weights w_;
  // The position tables transposed to [num_heads, num_buckets] (f32) on the model's device, so that a
  // block's bias is one index_select with bucket_index.
  std::vector<Tensor> pos_t_;  // per block, or one shared
};

}  // namespace x2v::models::wan
