#include "pipeline/request.h"

#include <chrono>
#include <cmath>
#include <random>

namespace x2v::pipeline {

const char* task_name(Task t) { return t == Task::T2V ? "t2v" : "i2v"; }

Task parse_task(std::string_view s) {
  if (s == "t2v") return Task::T2V;
  if (s == "i2v") return Task::I2V;
  fail(ErrorKind::InvalidArgument, "unknown task \"", s, "\"; use t2v (text to video) or i2v (image to video)");
}

const std::string& default_negative_prompt(Task t) {
  // wan_shared_cfg.sample_neg_prompt; the separators are full-width commas (U+FF0C).
  static const std::string shared =
      "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
      "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，"
      "形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";
  static const std::string i2v = "镜头晃动，" + shared;
  return t == Task::I2V ? i2v : shared;
}

void check_size(int width, int height, const char* what) {
  for (auto [v, name] : {std::pair{width, "width"}, std::pair{height, "height"}}) {
    if (v < kMinSide || v > kMaxSide)
      fail(ErrorKind::InvalidArgument, what, " ", name, " ", v, " is out of range: use ", kMinSide, "..", kMaxSide,
           " pixels (Wan's sizes are 832x480, 480x832, 1280x720, 720x1280)");
    if (v % 16 != 0)
      fail(ErrorKind::InvalidArgument, what, " ", name, " ", v,
           " is not a multiple of 16 (the VAE downsamples by 8 and the DiT patches 2x2); try ", (v + 8) / 16 * 16);
  }
}

int64_t video_tokens(int width, int height, int frames) {
  return int64_t{(frames - 1) / 4 + 1} * (height / 16) * (width / 16);
}

void check_tokens(int width, int height, int frames) {
  const int64_t n = video_tokens(width, height, frames);
  if (n > kMaxTokens)
    fail(ErrorKind::InvalidArgument, width, "x", height, " with ", frames, " frames is ", n,
         " tokens for the DiT, beyond the limit of ", kMaxTokens,
         " (1280x720 at 81 frames is 75600): lower the size or the frame count");
}

namespace {

constexpr int kI2V480Area = 832 * 480;  // the reference's I2V shift is 3 at this area

void check_frames(int frames) {
  if (frames < 1 || frames > kMaxFrames)
    fail(ErrorKind::InvalidArgument, "--frames ", frames, " is out of range: use 1..", kMaxFrames,
         " (4n+1; Wan's default is 81)");
  if ((frames - 1) % 4 != 0) {
    const int lo = (frames - 1) / 4 * 4 + 1;
    fail(ErrorKind::InvalidArgument, "--frames ", frames,
         " is not of the form 4n+1 (the VAE compresses 4 frames after the first); use ", lo, " or ", lo + 4);
  }
}

uint64_t random_seed() {
  std::random_device rd;
  const uint64_t t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return ((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ t) & ((uint64_t{1} << 53) - 1);
}

}  // namespace

GenerateSettings resolve(const GenerateRequest& r) {
  GenerateSettings s;
  s.task = r.task;
  s.model = r.model;
  s.device = r.device;
  s.prompt = r.prompt;
  s.image = r.image;
  s.text_embeddings = r.text_embeddings;
  s.clip_embeddings = r.clip_embeddings;
  s.noise = r.noise;
  s.output = r.output;
  s.output_tensor = r.output_tensor;
  s.negative_prompt = r.negative_prompt ? *r.negative_prompt : default_negative_prompt(r.task);
  // The reference uses the default negative prompt when the user passes an empty one.
  if (s.negative_prompt.empty()) s.negative_prompt = default_negative_prompt(r.task);

  if (s.prompt.empty() && s.text_embeddings.empty())
    fail(ErrorKind::InvalidArgument, "no prompt: pass --prompt \"...\" (or --text-embeddings FILE)");
  if (s.output.empty() && s.output_tensor.empty())
    fail(ErrorKind::InvalidArgument, "no output: pass -o OUT.mp4 (or -o FOLDER/ for PNG frames)");

  if (r.width.has_value() != r.height.has_value())
    fail(ErrorKind::InvalidArgument, "give both width and height (--size WxH)");
  if (r.task == Task::T2V) {
    if (!r.image.empty())
      fail(ErrorKind::InvalidArgument, "--image is for --task i2v; text-to-video takes no image");
    if (r.max_area)
      fail(ErrorKind::InvalidArgument, "--max-area is for --task i2v; give the text-to-video size with --size WxH");
    if (!r.clip_embeddings.empty())
      fail(ErrorKind::InvalidArgument, "--clip-embeddings is for --task i2v; text-to-video uses no CLIP");
    s.width = r.width.value_or(832);
    s.height = r.height.value_or(480);
    check_size(s.width, s.height, "--size");
  } else {
    if (r.image.empty())
      fail(ErrorKind::InvalidArgument, "--task i2v needs an input image: pass --image FILE.png (or .jpg)");
    // As the reference does, an I2V size is a pixel budget; the image's aspect picks the shape.
    if (r.max_area && r.width)
      fail(ErrorKind::InvalidArgument, "give either --max-area or --size for i2v, not both");
    s.max_area = r.max_area ? *r.max_area : (r.width ? int64_t{*r.width} * *r.height : kI2V480Area);
    if (r.width) {
      if (*r.width < kMinSide || *r.height < kMinSide || *r.width > kMaxSide || *r.height > kMaxSide)
        fail(ErrorKind::InvalidArgument, "--size ", *r.width, "x", *r.height, " is out of range (", kMinSide, "..",
             kMaxSide, " per side)");
    }
    if (s.max_area < 256 || s.max_area > kMaxArea)
      fail(ErrorKind::InvalidArgument, "--max-area ", s.max_area, " is out of range: use 256..", kMaxArea,
           " pixels (480p is 399360 = 832*480, 720p is 921600 = 1280*720)");
  }

  s.frames = r.frames.value_or(81);
  check_frames(s.frames);
  if (r.task == Task::T2V) check_tokens(s.width, s.height, s.frames);
  s.fps = r.fps.value_or(16);
  if (s.fps < 1 || s.fps > kMaxFps)
    fail(ErrorKind::InvalidArgument, "--fps ", s.fps, " is out of range: use 1..", kMaxFps, " (Wan2.1 uses 16)");

  // Sampler: a step list means a step-distilled model, sampled with Euler over that list.
  sched::SamplerConfig& c = s.sampler;
  c.step_list = r.step_list;
  if (r.solver) {
    c.solver = *r.solver;
  } else {
    c.solver = r.step_list.empty() ? sched::Solver::UniPC : sched::Solver::Euler;
  }
  const bool distilled = c.solver == sched::Solver::Euler;
  if (!r.step_list.empty() && !distilled)
    fail(ErrorKind::InvalidArgument, "--step-list is for step-distilled models sampled with --solver euler, not ",
         sched::solver_name(c.solver), "; drop --solver or the step list");
  if (distilled && c.step_list.empty()) c.step_list = sched::default_step_list();
  if (distilled) {
    c.steps = r.steps.value_or(static_cast<int>(c.step_list.size()));
    if (c.steps != static_cast<int>(c.step_list.size()))
      fail(ErrorKind::InvalidArgument, "--steps ", c.steps, " does not match the ", c.step_list.size(),
           "-entry step list; a distilled model takes exactly one step per list entry");
  } else {
    c.steps = r.steps.value_or(r.task == Task::T2V ? 50 : 40);
  }
  if (c.steps < 1 || c.steps > sched::kMaxSteps)
    fail(ErrorKind::InvalidArgument, "--steps ", c.steps, " is out of range: use 1..", sched::kMaxSteps,
         " (Wan uses 50 for t2v, 40 for i2v; distilled models 4)");
  double shift = 5.0;
  if (r.task == Task::I2V && !distilled && s.max_area == kI2V480Area) shift = 3.0;
  c.shift = r.shift.value_or(shift);
  if (!std::isfinite(c.shift) || c.shift <= 0.0 || c.shift > 1000.0)
    fail(ErrorKind::InvalidArgument, "--shift ", c.shift, " is out of range: use a number in (0, 1000] (Wan uses 5)");
  sched::make_schedule(c);  // the sampler's own checks, before any weight is loaded

  s.guide_scale = r.guide_scale.value_or(5.0);
  if (!std::isfinite(s.guide_scale) || s.guide_scale < 0.0 || s.guide_scale > kMaxGuideScale)
    fail(ErrorKind::InvalidArgument, "--guide-scale ", s.guide_scale, " is out of range: use 0..", kMaxGuideScale,
         " (Wan uses 5; 1 turns classifier-free guidance off)");
  // Guidance is distilled into step-distilled models (LightX2V: enable_cfg false); a scale of 1
  // makes the unconditional pass cancel out, so it is skipped.
  s.cfg = r.enable_cfg.value_or(!distilled) && s.guide_scale != 1.0;
  if (distilled && !r.enable_cfg && r.guide_scale && *r.guide_scale != 1.0)
    s.notes.push_back("--guide-scale is ignored: a step-distilled model runs without guidance (LightX2V's "
                      "enable_cfg false); set \"enable_cfg\": true in --config to force it");

  if (r.seed && *r.seed < 0) {
    s.seed = random_seed();
  } else {
    s.seed = r.seed ? static_cast<uint64_t>(*r.seed) : random_seed();
  }
  return s;
}

}  // namespace x2v::pipeline
