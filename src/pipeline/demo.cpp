#include "pipeline/demo.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "pipeline/model_dir.h"
#include "pipeline/noise.h"
#include "pipeline/request.h"

namespace x2v::pipeline {
namespace fs = std::filesystem;

namespace {

void add_linear(TensorShapes& t, const std::string& n, int64_t out, int64_t in, bool bias = true) {
  t.push_back({n + ".weight", {out, in}});
  if (bias) t.push_back({n + ".bias", {out}});
}

}  // namespace

TensorShapes wan_dit_shapes(const DitShapeConfig& c) {
  TensorShapes t;
  const int64_t d = c.dim;
  t.push_back({"patch_embedding.weight", {d, c.in_dim, 1, 2, 2}});
  t.push_back({"patch_embedding.bias", {d}});
  add_linear(t, "text_embedding.0", d, c.text_dim);
  add_linear(t, "text_embedding.2", d, d);
  add_linear(t, "time_embedding.0", d, c.freq_dim);
  add_linear(t, "time_embedding.2", d, d);
  add_linear(t, "time_projection.1", 6 * d, d);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    t.push_back({b + "modulation", {1, 6, d}});
    for (const char* a : {"self_attn", "cross_attn"}) {
      for (const char* p : {"q", "k", "v", "o"}) add_linear(t, b + a + "." + p, d, d);
      t.push_back({b + a + ".norm_q.weight", {d}});
      t.push_back({b + a + ".norm_k.weight", {d}});
    }
    if (c.i2v) {
      add_linear(t, b + "cross_attn.k_img", d, d);
      add_linear(t, b + "cross_attn.v_img", d, d);
      t.push_back({b + "cross_attn.norm_k_img.weight", {d}});
    }
    t.push_back({b + "norm3.weight", {d}});
    t.push_back({b + "norm3.bias", {d}});
    add_linear(t, b + "ffn.0", c.ffn_dim, d);
    add_linear(t, b + "ffn.2", d, c.ffn_dim);
  }
  t.push_back({"head.modulation", {1, 2, d}});
  add_linear(t, "head.head", c.out_dim * 4, d);
  if (c.i2v) {
    t.push_back({"img_emb.proj.0.weight", {1280}});
    t.push_back({"img_emb.proj.0.bias", {1280}});
    add_linear(t, "img_emb.proj.1", 1280, 1280);
    add_linear(t, "img_emb.proj.3", d, 1280);
    t.push_back({"img_emb.proj.4.weight", {d}});
    t.push_back({"img_emb.proj.4.bias", {d}});
  }
  return t;
}

namespace {

void add_conv3d(TensorShapes& t, const std::string& n, int64_t out, int64_t in, int64_t kt, int64_t k) {
  t.push_back({n + ".weight", {out, in, kt, k, k}});
  t.push_back({n + ".bias", {out}});
}

// ResidualBlock(in, out): RMS_norm, SiLU, CausalConv3d 3, RMS_norm, SiLU, Dropout, CausalConv3d 3;
// a 1x1x1 shortcut when the width changes.
void add_resblock(TensorShapes& t, const std::string& n, int64_t in, int64_t out) {
  t.push_back({n + ".residual.0.gamma", {in, 1, 1, 1}});
  add_conv3d(t, n + ".residual.2", out, in, 3, 3);
  t.push_back({n + ".residual.3.gamma", {out, 1, 1, 1}});
  add_conv3d(t, n + ".residual.6", out, out, 3, 3);
  if (in != out) add_conv3d(t, n + ".shortcut", out, in, 1, 1);
}

void add_attnblock(TensorShapes& t, const std::string& n, int64_t dim) {
  t.push_back({n + ".norm.gamma", {dim, 1, 1}});
  t.push_back({n + ".to_qkv.weight", {dim * 3, dim, 1, 1}});
  t.push_back({n + ".to_qkv.bias", {dim * 3}});
  t.push_back({n + ".proj.weight", {dim, dim, 1, 1}});
  t.push_back({n + ".proj.bias", {dim}});
}

// Resample: 2D conv (downsample: same width, stride 2; upsample: half width after nearest 2x),
// plus a temporal conv in the 3D modes.
void add_resample(TensorShapes& t, const std::string& n, int64_t dim, bool up, bool temporal) {
  const int64_t out = up ? dim / 2 : dim;
  t.push_back({n + ".resample.1.weight", {out, dim, 3, 3}});
  t.push_back({n + ".resample.1.bias", {out}});
  if (temporal) {
    const int64_t tout = up ? dim * 2 : dim;
    t.push_back({n + ".time_conv.weight", {tout, dim, 3, 1, 1}});
    t.push_back({n + ".time_conv.bias", {tout}});
  }
}

}  // namespace

TensorShapes wan_vae_shapes(const VaeShapeConfig& c) {
  TensorShapes t;
  const size_t levels = c.dim_mult.size();
  X2V_CHECK(levels >= 2 && c.temperal_downsample.size() == levels - 1);
  // Encoder3d(dim, z_dim * 2, ...)
  std::vector<int64_t> dims{c.dim};
  for (int64_t m : c.dim_mult) dims.push_back(c.dim * m);
  add_conv3d(t, "encoder.conv1", dims[0], 3, 3, 3);
  int idx = 0;
  int64_t out = dims[0];
  for (size_t i = 0; i + 1 < dims.size(); ++i) {
    int64_t in = dims[i];
    out = dims[i + 1];
    for (int64_t r = 0; r < c.num_res_blocks; ++r) {
      add_resblock(t, "encoder.downsamples." + std::to_string(idx++), in, out);
      in = out;
    }
    if (i != levels - 1) add_resample(t, "encoder.downsamples." + std::to_string(idx++), out, false, c.temperal_downsample[i]);
  }
  add_resblock(t, "encoder.middle.0", out, out);
  add_attnblock(t, "encoder.middle.1", out);
  add_resblock(t, "encoder.middle.2", out, out);
  t.push_back({"encoder.head.0.gamma", {out, 1, 1, 1}});
  add_conv3d(t, "encoder.head.2", c.z_dim * 2, out, 3, 3);
  add_conv3d(t, "conv1", c.z_dim * 2, c.z_dim * 2, 1, 1);
  add_conv3d(t, "conv2", c.z_dim, c.z_dim, 1, 1);
  // Decoder3d(dim, z_dim, ...): widths reversed, upsampling where the encoder downsampled.
  std::vector<int64_t> ddims{c.dim * c.dim_mult.back()};
  for (size_t i = levels; i-- > 0;) ddims.push_back(c.dim * c.dim_mult[i]);
  std::vector<bool> temporal_up(c.temperal_downsample.rbegin(), c.temperal_downsample.rend());
  add_conv3d(t, "decoder.conv1", ddims[0], c.z_dim, 3, 3);
  add_resblock(t, "decoder.middle.0", ddims[0], ddims[0]);
  add_attnblock(t, "decoder.middle.1", ddims[0]);
  add_resblock(t, "decoder.middle.2", ddims[0], ddims[0]);
  idx = 0;
  for (size_t i = 0; i + 1 < ddims.size(); ++i) {
    // After an upsampling Resample the width is halved, so the next level starts from half.
    int64_t in = (i == 1 || i == 2 || i == 3) ? ddims[i] / 2 : ddims[i];
    out = ddims[i + 1];
    for (int64_t r = 0; r < c.num_res_blocks + 1; ++r) {
      add_resblock(t, "decoder.upsamples." + std::to_string(idx++), in, out);
      in = out;
    }
    if (i != levels - 1) add_resample(t, "decoder.upsamples." + std::to_string(idx++), out, true, temporal_up[i]);
  }
  t.push_back({"decoder.head.0.gamma", {out, 1, 1, 1}});
  add_conv3d(t, "decoder.head.2", 3, out, 3, 3);
  return t;
}

TensorShapes wan_t5_shapes(const T5ShapeConfig& c) {
  TensorShapes t;
  t.push_back({"token_embedding.weight", {c.vocab, c.dim}});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    t.push_back({b + "norm1.weight", {c.dim}});
    for (const char* p : {"q", "k", "v"}) t.push_back({b + "attn." + p + ".weight", {c.dim_attn, c.dim}});
    t.push_back({b + "attn.o.weight", {c.dim, c.dim_attn}});
    t.push_back({b + "norm2.weight", {c.dim}});
    t.push_back({b + "ffn.gate.0.weight", {c.dim_ffn, c.dim}});
    t.push_back({b + "ffn.fc1.weight", {c.dim_ffn, c.dim}});
    t.push_back({b + "ffn.fc2.weight", {c.dim, c.dim_ffn}});
    t.push_back({b + "pos_embedding.embedding.weight", {c.num_buckets, c.num_heads}});
  }
  t.push_back({"norm.weight", {c.dim}});
  return t;
}

TensorShapes wan_clip_shapes(const ClipShapeConfig& c) {
  TensorShapes t;
  const int64_t d = c.dim, grid = c.image_size / c.patch_size;
  t.push_back({"visual.patch_embedding.weight", {d, 3, c.patch_size, c.patch_size}});
  t.push_back({"visual.cls_embedding", {1, 1, d}});
  t.push_back({"visual.pos_embedding", {1, grid * grid + 1, d}});
  t.push_back({"visual.pre_norm.weight", {d}});
  t.push_back({"visual.pre_norm.bias", {d}});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string b = "visual.transformer." + std::to_string(i) + ".";
    t.push_back({b + "norm1.weight", {d}});
    t.push_back({b + "norm1.bias", {d}});
    add_linear(t, b + "attn.to_qkv", 3 * d, d);
    add_linear(t, b + "attn.proj", d, d);
    t.push_back({b + "norm2.weight", {d}});
    t.push_back({b + "norm2.bias", {d}});
    add_linear(t, b + "mlp.0", c.mlp_dim, d);
    add_linear(t, b + "mlp.2", d, c.mlp_dim);
  }
  t.push_back({"visual.post_norm.weight", {d}});
  t.push_back({"visual.post_norm.bias", {d}});
  t.push_back({"visual.head", {d, c.head_out}});
  return t;
}

Tensor demo_init(const std::string& name, const Shape& shape, uint64_t seed) {
  Tensor t = gaussian_noise(shape, seed);
  float* p = t.data<float>();
  const int64_t n = t.numel();
  auto ends = [&](const char* s) {
    const size_t k = std::char_traits<char>::length(s);
    return name.size() >= k && name.compare(name.size() - k, k, s) == 0;
  };
  float scale = 1.f, offset = 0.f;
  if (ends("gamma") || (ends(".weight") && shape.size() == 1)) {
    scale = 0.1f;  // norm gains
    offset = 1.f;
  } else if (ends(".bias")) {
    scale = 0.02f;
  } else if (ends("modulation")) {
    scale = 1.f / std::sqrt(static_cast<float>(shape.back()));
  } else if (name == "token_embedding.weight") {
    scale = 1.f;
  } else if (ends("pos_embedding") || ends("cls_embedding")) {
    scale = 0.02f;
  } else {
    int64_t fan_in = 1;
    for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
    scale = 1.f / std::sqrt(static_cast<float>(fan_in));
  }
  for (int64_t i = 0; i < n; ++i) p[i] = offset + scale * p[i];
  return t;
}

namespace {

class CaptionIterator : public sentencepiece::SentenceIterator {
 public:
  CaptionIterator() {
    const char* subjects[] = {"a red fox", "a small cat", "an old man", "two dogs", "a blue car", "a white horse",
                              "a young woman", "a flock of birds", "a sailing boat", "a golden retriever",
                              "a steam train", "an astronaut", "a panda", "a child", "a hot air balloon"};
    const char* verbs[] = {"running", "walking", "jumping", "sleeping", "flying", "swimming", "dancing",
                           "drifting", "climbing", "turning", "smiling", "waiting"};
    const char* places[] = {"through fresh snow", "on a sandy beach", "in a quiet forest", "under heavy rain",
                            "at sunrise", "in a busy city street", "across a wide river", "over the mountains",
                            "inside a cozy room", "near a lighthouse", "on the moon", "in a field of flowers"};
    const char* styles[] = {"cinematic", "slow motion", "close up shot", "aerial view", "warm light",
                            "high detail", "soft focus", "night scene"};
    size_t k = 0;
    for (const char* s : subjects)
      for (const char* v : verbs)
        for (const char* p : places) {
          lines_.push_back(std::string(s) + " " + v + " " + p + ", " + styles[k % 8]);
          ++k;
        }
    // Wan's default negative prompt, so the demo tokenizes it into pieces rather than unknowns.
    lines_.push_back(default_negative_prompt(Task::I2V));
  }
  bool done() const override { return i_ >= lines_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return lines_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  std::vector<std::string> lines_;
  size_t i_ = 0;
};

// SentencePiece logs its command line to stderr even at minloglevel 2; the demo's output stays
// readable with stderr muted for the duration of the training.
class MutedStderr {
 public:
  MutedStderr() {
    std::fflush(stderr);
    saved_ = dup(2);
    const int null = open("/dev/null", O_WRONLY);
    if (saved_ >= 0 && null >= 0) dup2(null, 2);
    if (null >= 0) close(null);
  }
  ~MutedStderr() {
    std::fflush(stderr);
    if (saved_ >= 0) {
      dup2(saved_, 2);
      close(saved_);
    }
  }

 private:
  int saved_ = -1;
};

void write_text(const fs::path& p, const std::string& text) {
  io::AtomicFile f(p.string());
  f.write(text.data(), text.size());
  f.commit();
}

}  // namespace

std::string train_demo_tokenizer(int vocab_size) {
  CaptionIterator it;
  std::string proto;
  sentencepiece::util::Status st;
  {
    MutedStderr mute;
    st = sentencepiece::SentencePieceTrainer::Train(
        "--model_type=unigram --vocab_size=" + std::to_string(vocab_size) +
            " --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 --pad_piece=<pad> --eos_piece=</s> --unk_piece=<unk>"
            " --character_coverage=1.0 --hard_vocab_limit=false --num_threads=1 --minloglevel=2",
        &it, &proto);
  }
  if (!st.ok()) fail(ErrorKind::Internal, "demo: training the tokenizer failed: ", st.ToString());
  return proto;
}

void apply_demo_defaults(GenerateRequest& r) {
  if (!r.model.model_dir.empty() || !r.model.dit.empty())
    fail(ErrorKind::InvalidArgument, "--demo builds its own tiny model; drop --model-dir / --dit");
  if (r.prompt.empty() && r.text_embeddings.empty()) r.prompt = kDemoPrompt;
  if (!r.width && !r.height && !r.max_area) {
    if (r.task == Task::T2V) {
      r.width = kDemoWidth;
      r.height = kDemoHeight;
    } else {
      r.max_area = int64_t{kDemoWidth} * kDemoHeight;
    }
  }
  if (!r.frames) r.frames = kDemoFrames;
  if (!r.steps && r.step_list.empty()) r.steps = kDemoSteps;
  if (!r.seed) r.seed = 42;
}

DemoModelInfo write_demo_model(const std::string& dir, uint64_t seed, bool i2v) {
  DemoModelInfo info;
  info.dir = dir;
  const fs::path root(dir);
  std::error_code ec;
  fs::create_directories(root / kTokenizerDir, ec);
  if (ec) fail(ErrorKind::Io, "demo: cannot create ", (root / kTokenizerDir).string(), ": ", ec.message());

  const std::string proto = train_demo_tokenizer();
  sentencepiece::SentencePieceProcessor sp;
  if (!sp.LoadFromSerializedProto(proto).ok()) fail(ErrorKind::Internal, "demo: the trained tokenizer does not load");
  info.vocab = sp.GetPieceSize();
  write_text(root / kTokenizerDir / "spiece.model", proto);

  info.t5.vocab = info.vocab;
  info.dit.text_dim = info.t5.dim;
  if (i2v) {
    info.dit.i2v = true;
    info.dit.in_dim = 36;  // noise 16 + mask 4 + image latent 16
    info.clip = {.dim = 1280, .image_size = 224, .patch_size = 14, .num_layers = 2, .mlp_dim = 1280, .head_out = 1024};
  }

  uint64_t k = seed * 1000003u;
  auto write_set = [&](const fs::path& p, const TensorShapes& shapes) {
    std::vector<std::pair<std::string, Tensor>> ts;
    for (const auto& [name, shape] : shapes) ts.emplace_back(name, demo_init(name, shape, ++k));
    io::write_safetensors(p.string(), ts);
  };
  write_set(root / kDitFile, wan_dit_shapes(info.dit));
  write_set(root / "models_t5_umt5-xxl-enc-bf16.safetensors", wan_t5_shapes(info.t5));
  write_set(root / "Wan2.1_VAE.safetensors", wan_vae_shapes(info.vae));
  if (i2v) {
    write_set(root / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.safetensors", wan_clip_shapes(info.clip));
    // 16 heads is also ViT-H/14's; written out so the demo exercises the --clip-config path.
    write_text(root / kClipConfigFile, nlohmann::json{{"num_heads", 16}}.dump() + "\n");
  }

  nlohmann::json cfg = {{"_class_name", "WanModel"}, {"model_type", i2v ? "i2v" : "t2v"},    {"patch_size", {1, 2, 2}},
                        {"text_len", 512},           {"in_dim", info.dit.in_dim}, {"dim", info.dit.dim},
                        {"ffn_dim", info.dit.ffn_dim}, {"freq_dim", info.dit.freq_dim}, {"text_dim", info.dit.text_dim},
                        {"out_dim", info.dit.out_dim}, {"num_heads", info.dit.num_heads},
                        {"num_layers", info.dit.num_layers}, {"window_size", {-1, -1}}, {"qk_norm", true},
                        {"cross_attn_norm", true},   {"eps", 1e-6}};
  write_text(root / kConfigFile, cfg.dump(2) + "\n");
  return info;
}

}  // namespace x2v::pipeline
