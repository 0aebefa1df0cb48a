#include "pipeline/pipeline.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>

#include "io/image.h"
#include "io/safetensors.h"
#include "io/video.h"
#include "io/weights.h"
#include "models/wan/clip.h"
#include "models/wan/detect.h"
#include "models/wan/dit.h"
#include "models/wan/encoder_keys.h"
#include "models/wan/t5.h"
#include "models/wan/tokenizer.h"
#include "models/wan/vae.h"
#include "ops/layout.h"
#include "pipeline/i2v.h"
#include "pipeline/model_dir.h"
#include "pipeline/noise.h"
#include "sched/sampler.h"

namespace x2v::pipeline {
namespace fs = std::filesystem;
namespace wan = models::wan;

namespace {

using Clock = std::chrono::steady_clock;

// One stage: reported to the Progress (ended also when an exception leaves the scope) and timed
// for the result's summary.
class Stage {
 public:
  Stage(GenerateResult& r, Progress* p, std::string name, int64_t steps)
      : r_(r), scope_(p, name, steps), name_(std::move(name)), p_(p), steps_(steps) {}
  ~Stage() { record(); }
  // Steps of a stage that learns its length only once it runs (VAE chunks) report their own total.
  void progress(int64_t done, int64_t total = -1) {
    if (!p_) return;
    if (total >= 0 && steps_ <= 0) p_->step(done, total);
    else scope_.step(done);
  }

 private:
  void record() {
    r_.stages.push_back({name_, std::chrono::duration<double>(Clock::now() - t0_).count()});
  }
  GenerateResult& r_;
  ProgressStage scope_;
  std::string name_;
  Progress* p_;
  int64_t steps_;
  Clock::time_point t0_ = Clock::now();
};

size_t peak_rss_bytes() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<size_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

// One tensor of a reproduction file, as f32 on the host.
Tensor read_named(const std::string& path, const std::string& name, const char* option) {
  io::SafeTensors st = io::SafeTensors::open(path);
  if (!st.has(name)) {
    std::string have;
    for (const auto& t : st.tensors()) have += (have.empty() ? "" : ", ") + t.name;
    fail(ErrorKind::NotFound, option, " ", path, " has no tensor \"", name, "\" (it holds: ",
         have.empty() ? "nothing" : have, ")");
  }
  Tensor t = st.get(name);
  if (!dtype_is_float(t.dtype()))
    fail(ErrorKind::BadFile, option, " ", path, ": \"", name, "\" is ", t.desc(), "; expected floating point");
  return t.to(DType::F32).clone();
}

// Text embeddings [L, text_dim] (a leading batch of 1 is accepted).
Tensor check_context(Tensor c, const std::string& what, int64_t text_dim, int64_t text_len) {
  if (c.dim() == 3 && c.size(0) == 1) c = c[0];
  if (c.dim() != 2 || c.size(0) < 1 || c.size(0) > text_len || c.size(1) != text_dim)
    fail(ErrorKind::InvalidArgument, what, " is ", c.desc(), "; the DiT takes [L, ", text_dim, "] text embeddings with 1 <= L <= ",
         text_len, " (T5 outputs of a model with text_dim ", text_dim, ")");
  return c;
}

// What the DiT file is, from its tensors alone (cheap: no weight is read), so that a model of the
// wrong task is refused before minutes of text encoding.
void check_dit_fits_task(const std::string& path, Task task) {
  auto store = io::open_weights(path);
  wan::Layout l = wan::detect(*store);
  if (l.kind != wan::Kind::DiT)
    fail(ErrorKind::InvalidArgument, "the DiT file ", path, " holds ",
         l.kind == wan::Kind::Unknown ? std::string("no model x2v recognizes") : std::string("a ") + wan::kind_name(l.kind),
         ", not a Wan DiT; check --dit / --model-dir (`x2v info FILE` shows what a file holds)");
  const std::string p = l.diffusers ? "" : l.prefix;
  const Shape pe = store->meta(p + "patch_embedding.weight").shape;
  const int64_t in_dim = pe.size() == 5 ? pe[1] : -1;
  const bool clip = store->has(p + (l.diffusers ? "condition_embedder.image_embedder.norm1.weight" : "img_emb.proj.0.weight"));
  if (in_dim == 48)
    fail(ErrorKind::Unsupported, path, " is a Wan2.2 TI2V-5B DiT (in_dim 48); x2v runs Wan2.1 T2V and I2V models");
  if (task == Task::T2V && (in_dim != 16 || clip))
    fail(ErrorKind::InvalidArgument, path, " is an image-to-video DiT (in_dim ", in_dim,
         clip ? ", CLIP branch" : "", "); run it with --task i2v --image FILE, or use a text-to-video model");
  if (task == Task::I2V) {
    if (in_dim == 16)
      fail(ErrorKind::InvalidArgument, path,
           " is a text-to-video DiT (in_dim 16); --task i2v needs an I2V model (Wan2.1-I2V-14B-480P/720P), or use --task t2v");
    if (in_dim != 36)
      fail(ErrorKind::Unsupported, path, ": a DiT with in_dim ", in_dim, " is not a Wan2.1 I2V model (in_dim 36)");
    if (!clip)
      fail(ErrorKind::Unsupported, path,
           " is an I2V DiT without the CLIP image branch (Wan2.2 I2V-A14B); x2v runs Wan2.1 I2V models");
  }
}

// The VAE file holds the Wan2.1 VAE (official or diffusers names); returns the store as official names.
std::shared_ptr<io::WeightStore> check_vae_kind(const std::string& path) {
  std::shared_ptr<io::WeightStore> store = io::open_weights(path);
  wan::Layout l = wan::detect(*store);
  if (l.kind == wan::Kind::VAE22)
    fail(ErrorKind::Unsupported, "the VAE file ", path, " is the Wan2.2 VAE; Wan2.1 models use Wan2.1_VAE.pth");
  std::shared_ptr<io::WeightStore> named = wan::vae_official_names(store);
  if (wan::detect(*named).kind != wan::Kind::VAE21)
    fail(ErrorKind::InvalidArgument, "the VAE file ", path, " holds ",
         l.kind == wan::Kind::Unknown ? std::string("no model x2v recognizes") : std::string("a ") + wan::kind_name(l.kind),
         ", not the Wan2.1 VAE; check --vae / --model-dir");
  return named;
}

wan::WanVAE load_vae(const std::string& path, const wan::VaeLoadOptions& opt) {
  std::shared_ptr<io::WeightStore> named = check_vae_kind(path);
  wan::VaeConfig cfg = wan::resolve_vae_config({}, *named);
  return wan::WanVAE::load(*named, cfg, opt);
}

void check_parent_writable(const std::string& path, const char* option) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  fs::path parent = fs::path(p).parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  if (!fs::exists(parent, ec))
    fail(ErrorKind::Io, option, " ", path, ": the folder ", parent.string(), " does not exist; create it first");
  if (!fs::is_directory(parent, ec))
    fail(ErrorKind::Io, option, " ", path, ": ", parent.string(), " is not a folder");
  if (access(parent.c_str(), W_OK | X_OK) != 0)
    fail(ErrorKind::Io, option, " ", path, ": the folder ", parent.string(), " is not writable");
}

}  // namespace

void check_outputs(const GenerateSettings& s) {
  if (!s.output.empty()) {
    const io::VideoTarget target = io::video_target(s.output);
    if (target == io::VideoTarget::File && !io::can_write_video_files())
      fail(ErrorKind::Unsupported, "-o ", s.output,
           ": this build of x2v has no H.264 encoder (FFmpeg libraries not found at build time); write PNG frames with "
           "-o FOLDER/ or rebuild after scripts/install-deps.sh");
    check_parent_writable(s.output, "-o");
  }
  if (!s.output_tensor.empty()) check_parent_writable(s.output_tensor, "--output-tensor");
  if (!s.output.empty() && s.output == s.output_tensor)
    fail(ErrorKind::InvalidArgument, "-o and --output-tensor name the same file ", s.output);
}

GenerateResult generate(const GenerateSettings& s, Progress* obs, const std::atomic<bool>* cancel) {
  auto poll = [cancel] {
    if (cancel && cancel->load(std::memory_order_relaxed)) throw Cancelled();
  };
  GenerateResult res;
  res.seed = s.seed;
  res.frames = s.frames;
  if (s.device != Device::CPU && !device_allocator(s.device))
    fail(ErrorKind::Unsupported, "--device ", device_name(s.device), ": no ", device_name(s.device),
         " backend in this build (rebuild with the CUDA preset, or use --device cpu)");
  check_outputs(s);

  const bool i2v = s.task == Task::I2V;
  // Every network runs on s.device, and what passes between the stages (text context, CLIP
  // features, the I2V latent, the denoised latent, the video) stays there; only the final video
  // comes back to the host to be written.
  const Device dev = s.device;
  const wan::ModelLoadOptions mopt = wan::ModelLoadOptions::for_device(dev);
  Needs needs;
  needs.text_encoder = s.text_embeddings.empty();
  needs.clip = i2v && s.clip_embeddings.empty();
  // The DiT decides whether the request makes sense at all; then every other file is found and
  // the VAE's kind checked, all before any long work.
  check_dit_fits_task(find_dit_files(s.model).dit, s.task);
  const ModelFiles files = find_model_files(s.model, needs);
  check_vae_kind(files.vae);
  // The encoders' files by their tensor names (cheap: nothing is read), so a T5 given for the CLIP
  // is refused before the text encoder runs.
  if (!files.t5.empty()) wan::t5_official_view(io::open_weights(files.t5));
  if (!files.clip.empty()) wan::clip_official_view(io::open_weights(files.clip));

  // The DiT's configuration first (cheap), so the text embeddings can be checked against it.
  wan::DitConfig dit_cfg;
  bool have_cfg = false;
  {
    std::shared_ptr<io::WeightStore> store = io::open_weights(files.dit);
    wan::DitConfigFields given;
    if (!files.dit_config.empty()) given = wan::read_dit_config(files.dit_config);
    wan::Layout l = wan::detect(*store);
    if (!l.diffusers && l.prefix.empty()) {
      dit_cfg = wan::resolve_dit_config(given, *store);
      have_cfg = true;
      if (i2v != dit_cfg.takes_y())
        fail(ErrorKind::InvalidArgument, files.dit_config.empty() ? files.dit : files.dit_config, " says model_type \"",
             dit_cfg.model_type, "\", which does not fit --task ", task_name(s.task));
    }
  }

  // The I2V image decides the video's size: read it (and refuse a bad one) before any long work.
  Tensor image;
  I2VSize sz;
  if (i2v) {
    image = io::image_to_unit(io::read_image(s.image));  // [3, h0, w0]
    sz = i2v_size(image.size(1), image.size(2), s.max_area);
    check_tokens(sz.width(), sz.height(), s.frames);
  }

  // 1. Text.
  Tensor context, context_null;
  if (!s.text_embeddings.empty()) {
    poll();
    Stage st(res, obs, "text embeddings", 0);
    context = read_named(s.text_embeddings, "context", "--text-embeddings");
    if (s.cfg) context_null = read_named(s.text_embeddings, "context_null", "--text-embeddings");
  } else {
    poll();
    Stage st(res, obs, "text encoder", s.cfg ? 2 : 1);
    wan::Tokenizer tok = wan::Tokenizer::open(files.tokenizer);
    wan::T5Encoder t5 = wan::T5Encoder::load(files.t5, {}, mopt);
    context = t5.encode(tok, s.prompt);
    st.progress(1);
    poll();
    if (s.cfg) {
      context_null = t5.encode(tok, s.negative_prompt);
      st.progress(2);
    }
  }

  if (have_cfg) {  // before the image encoder and the DiT are loaded
    context = check_context(context, "the prompt's text embedding", dit_cfg.text_dim, dit_cfg.text_len);
    if (s.cfg)
      context_null = check_context(context_null, "the negative prompt's text embedding", dit_cfg.text_dim, dit_cfg.text_len);
  }

  // 2. Image conditioning (I2V): size from the image, CLIP features, the VAE-encoded first frame.
  std::optional<wan::WanVAE> vae;
  Tensor clip_fea, y;
  const int width = i2v ? sz.width() : s.width, height = i2v ? sz.height() : s.height;
  if (i2v) {
    if (!s.clip_embeddings.empty()) {
      poll();
      Stage st(res, obs, "image embeddings", 0);
      clip_fea = read_named(s.clip_embeddings, "clip_context", "--clip-embeddings");
    } else {
      poll();
      Stage st(res, obs, "image encoder", 0);
      wan::EncoderConfigJson user;
      if (!files.clip_config.empty()) user = wan::EncoderConfigJson(files.clip_config);
      wan::ClipVisionEncoder clip = wan::ClipVisionEncoder::load(files.clip, std::move(user), mopt);
      clip_fea = clip.encode(image);
    }
    if (clip_fea.dim() == 3 && clip_fea.size(0) == 1) clip_fea = clip_fea[0];
    if (clip_fea.dim() != 2 || clip_fea.size(0) != 257 || clip_fea.size(1) != 1280)
      fail(ErrorKind::InvalidArgument, "the CLIP image features are ", clip_fea.desc(),
           "; the Wan2.1 I2V DiT takes [257, 1280] (ViT-H/14 tokens)");
    {
      poll();
      Stage st(res, obs, "VAE encode", 0);
      vae.emplace(load_vae(files.vae, mopt));
      Tensor video_in = i2v_vae_input(image, s.frames, height, width, dev);
      Tensor latent = vae->encode(video_in, [&](int64_t done, int64_t total) {
        st.progress(done, total);
        poll();
      });
      Tensor mask = i2v_mask(s.frames, sz.lat_h, sz.lat_w).to(dev);
      y = ops::concat({mask, latent}, 0);
    }
  } else {
    check_size(width, height, "--size");
  }
  res.width = width;
  res.height = height;

  // 3. The DiT.
  std::optional<wan::DitModel> dit;
  {
    poll();
    Stage st(res, obs, "load DiT", 0);
    dit.emplace(wan::DitModel::load(files.dit, files.dit_config, mopt));
  }
  const wan::DitConfig& cfg = dit->config();
  if (cfg.takes_y() != i2v)
    fail(ErrorKind::InvalidArgument, files.dit, " is a ", cfg.model_type, " model; it does not fit --task ", task_name(s.task));
  context = check_context(context, "the prompt's text embedding", cfg.text_dim, cfg.text_len);
  if (s.cfg) context_null = check_context(context_null, "the negative prompt's text embedding", cfg.text_dim, cfg.text_len);

  // 4. Noise.
  const Shape latent_shape = {cfg.out_dim, s.latent_frames(), height / 8, width / 8};
  Tensor x;
  if (!s.noise.empty()) {
    x = read_named(s.noise, "noise", "--noise");
    if (x.shape() != latent_shape)
      fail(ErrorKind::InvalidArgument, "--noise ", s.noise, ": \"noise\" is ", x.desc(), "; this request needs ",
           shape_str(latent_shape), " (", s.frames, " frames at ", width, "x", height, ")");
  } else {
    x = gaussian_noise(latent_shape, s.seed);
  }

  // 5. Denoising.
  {
    poll();
    Stage st(res, obs, "denoise", s.sampler.steps);
    std::unique_ptr<sched::Sampler> sampler = sched::make_sampler(s.sampler);
    Tensor yd = y.defined() ? y.to(dev) : Tensor();
    const wan::DitContext ctx_c = dit->embed_context(context.to(dev), clip_fea.defined() ? clip_fea.to(dev) : Tensor());
    wan::DitContext ctx_u;
    if (s.cfg) ctx_u = dit->embed_context(context_null.to(dev), clip_fea.defined() ? clip_fea.to(dev) : Tensor());
    x = x.to(dev);
    for (int k = 0; k < s.sampler.steps; ++k) {
      const Tensor t = Tensor::from_f32({sampler->timestep()}, {1}).to(dev);
      Tensor v = dit->forward(x, yd, t, ctx_c);
      if (s.cfg) {
        Tensor v_u = dit->forward(x, yd, t, ctx_u);
        v = sched::cfg_combine(v_u, v, static_cast<float>(s.guide_scale));
      }
      x = sampler->step(v, x);
      st.progress(k + 1);
      poll();
    }
  }
  dit.reset();  // the DiT's memory is not needed for decoding

  // 6. Decode.
  {
    poll();
    Stage st(res, obs, "VAE decode", 0);
    if (!vae) vae.emplace(load_vae(files.vae, mopt));
    const Tensor video = vae->decode(x, nullptr, [&](int64_t done, int64_t total) {
      st.progress(done, total);
      poll();
    });
    vae.reset();
    res.video = video.to(Device::CPU);
  }

  // 7. Outputs, each written to a temporary name and renamed.
  {
    poll();
    Stage st(res, obs, "write", 0);
    if (!s.output_tensor.empty()) {
      io::write_safetensors(s.output_tensor, {{"video", res.video}},
                            {{"fps", std::to_string(s.fps)}, {"seed", std::to_string(s.seed)}});
      res.written.push_back(s.output_tensor);
    }
    if (!s.output.empty()) {
      io::VideoOptions vo;
      vo.fps = s.fps;
      io::write_video(s.output, res.video, vo);
      res.written.push_back(s.output);
    }
  }
  res.peak_host_bytes = peak_rss_bytes();
  res.peak_device_bytes = static_cast<size_t>(std::max<int64_t>(0, device_peak_memory_bytes()));
  return res;
}

}  // namespace x2v::pipeline
