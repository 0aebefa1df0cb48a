// x2v generate: a prompt (and an image) in, a video out — Wan2.1 T2V and I2V end to end.
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>

#include "command.h"
#include "core/progress.h"
#include "pipeline/config_file.h"
#include "pipeline/demo.h"
#include "pipeline/model_dir.h"
#include "pipeline/pipeline.h"
#include "pipeline/request.h"

namespace x2v::cli {
namespace {
namespace fs = std::filesystem;
using pipeline::GenerateRequest;

struct Options {
  std::string task = "t2v", config, size, step_list, solver, device = "cpu";
  std::string prompt, negative_prompt, image, output, output_tensor;
  std::string text_embeddings, clip_embeddings, noise;
  pipeline::ModelPaths model;
  int64_t max_area = 0, seed = -1;
  int frames = 0, steps = 0, fps = 0;
  double shift = 0, guide_scale = 0;
  bool demo = false, quiet = false;
  CLI::App* app = nullptr;
  bool given(const char* name) const { return app->count(name) > 0; }
};

// "832x480" or "832*480" (the reference's spelling): width first.
void parse_size(const std::string& s, GenerateRequest& r) {
  const size_t x = s.find_first_of("x*X");
  int w = 0, h = 0;
  size_t a = 0, b = 0;
  try {
    if (x == std::string::npos) throw std::invalid_argument("no separator");
    w = std::stoi(s.substr(0, x), &a);
    h = std::stoi(s.substr(x + 1), &b);
  } catch (const std::exception&) {
    fail(ErrorKind::InvalidArgument, "--size \"", s, "\": give WIDTHxHEIGHT, e.g. 832x480");
  }
  if (a != x || b != s.size() - x - 1) fail(ErrorKind::InvalidArgument, "--size \"", s, "\": give WIDTHxHEIGHT, e.g. 832x480");
  r.width = w;
  r.height = h;
}

std::vector<int> parse_step_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size())
      fail(ErrorKind::InvalidArgument, "--step-list \"", s, "\": give comma-separated timesteps, e.g. 1000,750,500,250");
    out.push_back(v);
  }
  if (out.empty()) fail(ErrorKind::InvalidArgument, "--step-list is empty; e.g. 1000,750,500,250");
  return out;
}

// The first Ctrl-C (or SIGTERM) asks the run to stop at the next step, so that the temporary
// output files are removed on the way out; a second one kills the process.
std::atomic<bool> g_cancel{false};

extern "C" void on_interrupt(int sig) {
  if (g_cancel.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

int run_generate(Options& o) {
  GenerateRequest r;
  std::vector<std::string> warnings;
  if (!o.config.empty()) warnings = pipeline::apply_config_file(o.config, r);
  for (const auto& w : warnings) std::fprintf(stderr, "x2v: warning: %s\n", w.c_str());

  // Command-line options override the config file.
  if (o.given("--task") || o.config.empty()) r.task = pipeline::parse_task(o.task);
  r.model = o.model;
  if (o.given("--prompt")) r.prompt = o.prompt;
  if (o.given("--negative-prompt")) r.negative_prompt = o.negative_prompt;
  if (o.given("--image")) r.image = o.image;
  if (o.given("--size")) parse_size(o.size, r);
  if (o.given("--max-area")) r.max_area = o.max_area;
  if (o.given("--frames")) r.frames = o.frames;
  if (o.given("--steps")) r.steps = o.steps;
  if (o.given("--shift")) r.shift = o.shift;
  if (o.given("--guide-scale")) r.guide_scale = o.guide_scale;
  if (o.given("--solver")) r.solver = sched::parse_solver(o.solver);
  if (o.given("--step-list")) r.step_list = parse_step_list(o.step_list);
  if (o.given("--seed")) r.seed = o.seed;
  if (o.given("--fps")) r.fps = o.fps;
  r.text_embeddings = o.text_embeddings;
  r.clip_embeddings = o.clip_embeddings;
  r.noise = o.noise;
  r.output = o.output;
  r.output_tensor = o.output_tensor;
  r.device = device_from_name(o.device, "--device");

  // The demo: a tiny random model written to a temporary folder, then the normal loading path.
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir.empty()) fs::remove_all(dir, ec);
    }
  } cleanup;
  if (o.demo) pipeline::apply_demo_defaults(r);
  // Everything is checked before the demo model is built or any weight is read.
  pipeline::GenerateSettings s = pipeline::resolve(r);
  pipeline::check_outputs(s);
  for (const auto& n : s.notes) std::fprintf(stderr, "x2v: note: %s\n", n.c_str());
  std::unique_ptr<TerminalProgress> progress;
  if (!o.quiet) progress = std::make_unique<TerminalProgress>(stderr);
  if (o.demo) {
    std::string tmpl = (fs::temp_directory_path() / "x2v-demo-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) fail(ErrorKind::Io, "--demo: cannot create a temporary folder in ", fs::temp_directory_path().string());
    cleanup.dir = tmpl;
    {
      ProgressStage st(progress.get(), "build demo model");
      pipeline::write_demo_model(tmpl, 2024, s.task == pipeline::Task::I2V);
    }
    s.model.model_dir = tmpl;
  }

  if (!o.quiet) {
    char guidance[32] = "off";
    if (s.cfg) std::snprintf(guidance, sizeof guidance, "%g", s.guide_scale);
    std::fprintf(stderr, "x2v: %s, %s %d steps (shift %g), guidance %s, %d frames, seed %llu\n",
                 pipeline::task_name(s.task), sched::solver_name(s.sampler.solver), s.sampler.steps, s.sampler.shift,
                 guidance, s.frames, static_cast<unsigned long long>(s.seed));
  }
  // LightX2V's distilled DiTs carry their step count in the file name; sampled like a base model
  // they give a blurred video, so say how to run them.
  if (s.sampler.solver != sched::Solver::Euler) {
    const std::string dit = pipeline::find_dit_files(s.model).dit;
    std::string low = dit;
    for (char& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (low.find("lightx2v") != std::string::npos || low.find("distill") != std::string::npos ||
        low.find("4step") != std::string::npos)
      std::fprintf(stderr,
                   "x2v: warning: %s looks like a step-distilled model; these run with --step-list 1000,750,500,250 "
                   "(Euler, no guidance)\n",
                   dit.c_str());
  }
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  pipeline::GenerateResult res;
  try {
    res = pipeline::generate(s, progress.get(), &g_cancel);
  } catch (const pipeline::Cancelled&) {
    std::fprintf(stderr, "\nx2v: interrupted; nothing was written\n");
    return 130;
  }

  if (progress) {
    std::fprintf(stderr, "x2v: %dx%d, %d frames at %d fps\n", res.width, res.height, res.frames, s.fps);
    progress->print_summary();
  }
  for (const auto& w : res.written) std::printf("%s\n", w.c_str());
  return 0;
}

Register reg{{"generate", "Generate a video from a prompt (t2v) or an image and a prompt (i2v) with a Wan2.1 model",
              [](CLI::App& sub) {
                auto o = std::make_shared<Options>();
                o->app = &sub;
                sub.add_option("--task", o->task, "t2v (text to video, default) or i2v (image to video)");
                sub.add_option("--model-dir", o->model.model_dir,
                               "model folder: a Wan-AI download, a LightX2V distilled folder or ComfyUI split files");
                sub.add_option("--dit", o->model.dit, "DiT weights (.safetensors, .index.json, .pth); overrides the folder's");
                sub.add_option("--dit-config", o->model.dit_config, "the DiT's config.json");
                sub.add_option("--t5", o->model.t5, "umT5 text encoder weights (models_t5_umt5-xxl-enc-bf16.pth)");
                sub.add_option("--tokenizer", o->model.tokenizer, "the google/umt5-xxl tokenizer folder (or spiece.model)");
                sub.add_option("--clip", o->model.clip, "CLIP image encoder weights (I2V)");
                sub.add_option("--clip-config", o->model.clip_config, "CLIP tower configuration (non-standard towers)");
                sub.add_option("--vae", o->model.vae, "VAE weights (Wan2.1_VAE.pth)");
                sub.add_option("-p,--prompt", o->prompt, "what the video shows");
                sub.add_option("-n,--negative-prompt", o->negative_prompt,
                               "what to steer away from (default: the reference's negative prompt)");
                sub.add_option("--image", o->image, "I2V: the first frame (PNG or JPEG)");
                sub.add_option("--size", o->size, "T2V: WIDTHxHEIGHT, multiples of 16 (default 832x480); I2V: the pixel budget");
                sub.add_option("--max-area", o->max_area, "I2V: pixel budget; the image's aspect picks the shape (default 399360)");
                sub.add_option("--frames", o->frames, "frames, 4n+1 (default 81)");
                sub.add_option("--steps", o->steps, "sampling steps (default 50 t2v, 40 i2v, 4 distilled)");
                sub.add_option("--shift", o->shift, "noise schedule shift (default 5; 3 for 480p i2v)");
                sub.add_option("--guide-scale", o->guide_scale, "classifier-free guidance scale (default 5; 1 = off)");
                sub.add_option("--solver", o->solver, "unipc (default), dpm++ or euler (step-distilled models)");
                sub.add_option("--step-list", o->step_list, "distilled models: timesteps, e.g. 1000,750,500,250 (implies euler, no CFG)");
                sub.add_option("--seed", o->seed, "noise seed (default: random)");
                sub.add_option("--fps", o->fps, "frames per second of the MP4 (default 16)");
                sub.add_option("--config", o->config, "LightX2V-style JSON (infer_steps, sample_shift, sample_guide_scale, ...)");
                sub.add_option("-o,--output", o->output, "OUT.mp4 (H.264), or FOLDER/ for PNG frames");
                sub.add_option("--output-tensor", o->output_tensor, "also write the video [3,F,H,W] f32 in [-1,1] (safetensors)");
                sub.add_option("--text-embeddings", o->text_embeddings,
                               "safetensors with context and context_null: replaces the text encoder");
                sub.add_option("--clip-embeddings", o->clip_embeddings, "safetensors with clip_context [257,1280]: replaces CLIP");
                sub.add_option("--noise", o->noise, "safetensors with noise: the initial latent [16, T, H/8, W/8]");
                sub.add_option("--device", o->device, "cpu (default) or cuda");
                sub.add_flag("--demo", o->demo, "build a tiny random Wan model in a temporary folder and run it (no download)");
                sub.add_flag("-q,--quiet", o->quiet, "no progress or summary");
                return [o] { return run_generate(*o); };
              }}};

}  // namespace
}  // namespace x2v::cli
