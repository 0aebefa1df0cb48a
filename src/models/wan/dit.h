// The Wan DiT (`WanModel`, wan-spec §1): weights named like the checkpoint and a forward pass
// written with the ops of src/ops, so the same code runs wherever the tensors live.
//
//   x, y [C, F, H, W] ──patchify──► tokens [L, dim] ── N × block(e0, context) ── head(e) ──► [out_dim, F, H, W]
//   t ── sinusoid ── time MLP ──► e, e0         context [≤text_len, text_dim] (+ CLIP [257, 1280]) ──► [Lc, dim]
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "io/weights.h"
#include "models/wan/dit_config.h"
#include "models/wan/load_options.h"

namespace x2v::models::wan {

struct LinearW {
  Tensor weight, bias;  // [out, in], [out]
};
struct NormW {
  Tensor weight, bias;  // [D]; undefined when the norm has no affine parameters
};

struct DitSelfAttention {
  LinearW q, k, v, o;
  Tensor norm_q, norm_k;  // RMSNorm weights [dim] (undefined without qk_norm)
};
struct DitCrossAttention {
  LinearW q, k, v, o;
  Tensor norm_q, norm_k;
  // Wan2.1 I2V/FLF2V image branch.
  LinearW k_img, v_img;
  Tensor norm_k_img;
};
struct DitBlock {
  Tensor modulation;  // [6, dim]: shift, scale, gate (self-attn); shift, scale, gate (FFN)
  DitSelfAttention self_attn;
  NormW norm3;  // affine LayerNorm before cross-attention (cross_attn_norm)
  DitCrossAttention cross_attn;
  LinearW ffn_0, ffn_2;
};
struct DitImageEmbedding {  // img_emb = MLPProj
  NormW proj_0;
  LinearW proj_1, proj_3;
  NormW proj_4;
  Tensor emb_pos;  // [514, 1280], FLF2V only
};

// Named after the official state dict: `text_embedding_0` is `text_embedding.0.*`, and so on.
struct DitWeights {
  LinearW patch_embedding;  // weight flattened to [dim, in_dim·pt·ph·pw] (Conv3d with stride = kernel)
  LinearW text_embedding_0, text_embedding_2;
  LinearW time_embedding_0, time_embedding_2;
  LinearW time_projection_1;
  DitImageEmbedding img_emb;
  std::vector<DitBlock> blocks;
  Tensor head_modulation;  // [2, dim]: shift, scale
  LinearW head_head;
};

// Where and how the weights are kept. The CPU backend computes in f32; a device backend can keep
// the matmul weights in bf16 and everything the reference keeps in f32 (modulation tables, norms,
// the time MLP) in f32.
// Matmul weights (the blocks' linears, text/image MLPs, patch embedding) in matmul_dtype; the time
// MLP, head, norms and modulation stay f32, as the reference keeps them. The blocks' biases are kept
// off the CPU in bf16, the dtype their matmuls write and add them in.
using DitLoadOptions = ModelLoadOptions;

// Activations between ops: bf16 on a device backend (its matmuls and attention take bf16 operands,
// as the reference under autocast), f32 on the CPU reference backend. The residual stream, the
// time embedding and the head stay f32 everywhere.
inline DType dit_activation_dtype(Device d) { return d == Device::CPU ? DType::F32 : DType::BF16; }

// Loads and checks every tensor of `cfg` from `w` (official names); a tensor the model does not use
// is an error, so a wrong config or a file of another model cannot pass silently.
DitWeights load_dit_weights(const io::WeightStore& w, const DitConfig& cfg, const DitLoadOptions& opt = {});

// The conditioning after the text and image MLPs: what every denoising step of one prompt shares.
struct DitContext {
  Tensor text;   // [text_len, dim]
  Tensor image;  // [257 or 514, dim] for the CLIP branch, else undefined
  // Each block's cross-attention keys (normed) and values of the text and (CLIP branch) the image,
  // [tokens, heads, head_dim]. They depend on the context alone, so embed_context computes them once
  // for all the steps of a generation (14B: 80 GEMMs of 512 rows, 3.5 ms on an H100, and 420 MB
  // in bf16); a context without them (text and image only) has every forward compute them.
  std::vector<Tensor> text_k, text_v, image_k, image_v;
};

// Intermediate results, reported by name as the forward produces them: "patch_embedding_out"
// [L, dim], "context_embedded" [text_len, dim], "e0" [6, dim] (or [L, 6, dim] with per-token t),
// "block<i>_out" [L, dim], "head_out" [L, pt·ph·pw·out_dim].
using DitObserver = std::function<void(std::string_view name, const Tensor& value)>;

struct DitInputs {
  Tensor x;         // [C, F, H, W] noisy latent
  Tensor t;         // timestep: scalar or [1]; or per token [L] (Wan2.2, L = F·H·W / (pt·ph·pw))
  Tensor context;   // [L_text ≤ text_len, text_dim], text embeddings (unpadded)
  Tensor clip_fea;  // CLIP branch: [257, 1280] (FLF2V: [514, 1280] or [2, 257, 1280])
  Tensor y;         // I2V/FLF2V: [C_y, F, H, W], C + C_y = in_dim
};

class DitModel {
 public:
  DitModel(DitConfig cfg, DitWeights w) : cfg_(std::move(cfg)), w_(std::move(w)) {}

  // A weight file (.safetensors, sharded .index.json, .pth; official, ComfyUI-prefixed or diffusers
  // names) and its configuration: `config_path` if given, else a config.json beside the weights,
  // else everything inferred from the tensors.
  static DitModel load(const std::string& weights_path, const std::string& config_path = "",
                       const DitLoadOptions& opt = {});

  const DitConfig& config() const { return cfg_; }
  const DitWeights& weights() const { return w_; }
  DType activation_dtype() const { return dit_activation_dtype(w_.head_modulation.device()); }

  // text_embedding of the zero-padded text (and img_emb of the CLIP features).
  DitContext embed_context(const Tensor& context, const Tensor& clip_fea = {}, const DitObserver& obs = {}) const;
  // The flow velocity [out_dim, F, H, W] (f32).
  Tensor forward(const Tensor& x, const Tensor& y, const Tensor& t, const DitContext& ctx, const DitObserver& obs = {}) const;
  Tensor forward(const DitInputs& in, const DitObserver& obs = {}) const;

 private:
  Tensor embed_image(const Tensor& clip_fea) const;

  DitConfig cfg_;
  DitWeights w_;
};

}  // namespace x2v::models::wan
