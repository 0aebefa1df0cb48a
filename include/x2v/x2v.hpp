// x2v C++ API: generate a Wan video from a C++ program without the engine's internals.
//
//   x2v::Options o;
//   o.model.dir = "Wan2.1-T2V-1.3B";
//   o.prompt = "a red fox running through snow";
//   o.width = 832, o.height = 480;
//   o.output = "fox.mp4";
//   try {
//     x2v::Result r = x2v::generate(o, [](const x2v::ProgressInfo& p) { ... });
//   } catch (const x2v::Exception& e) {
//     // e.status(): X2V_ERR_* (the CLI's exit code), e.what(): what was wrong and what to do
//   }
//
// Every option left empty takes the CLI's default (the reference's). Options are checked in one
// place, the pipeline's, when generate() runs and before any long work, so a program gets the same
// refusals and messages as `x2v generate`. Types here stay stable while the engine changes.
//
// Threads: generate() may be called from any thread; calls run one at a time in a process (a second
// waits for the first): a generation uses every core and the whole GPU. The progress callback runs
// on the calling thread, between pieces of work, and must not call generate().
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "x2v/x2v.h"

namespace x2v {

// "0.1.0"
const char* version();

// The status of a failed call; the values are the C API's X2V_ERR_* codes and the CLI's exit codes.
enum class Status : int {
  Ok = X2V_OK,
  InvalidArgument = X2V_ERR_INVALID_ARGUMENT,
  NotFound = X2V_ERR_NOT_FOUND,
  BadFile = X2V_ERR_BAD_FILE,
  Unsupported = X2V_ERR_UNSUPPORTED,
  Io = X2V_ERR_IO,
  OutOfMemory = X2V_ERR_OUT_OF_MEMORY,
  Device = X2V_ERR_DEVICE,
  Internal = X2V_ERR_INTERNAL,
  Cancelled = X2V_ERR_CANCELLED,
};
// "invalid argument", "not found", ...
const char* status_name(Status s);

// What generate() throws for every failure of the engine: a status and a message that says what
// was wrong and, where it helps, what to do. (An exception thrown by the progress callback is
// passed through unchanged.)
class Exception : public std::runtime_error {
 public:
  Exception(Status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  Status status() const { return status_; }

 private:
  Status status_;
};

// Where the weights are. Each explicit file overrides the one found in `dir` (a Wan-AI download, a
// LightX2V distilled folder or ComfyUI split files; see the README).
struct ModelFiles {
  std::string dir;
  std::string dit;          // .safetensors, *.safetensors.index.json, .pth, or a folder of them
  std::string dit_config;   // the DiT's config.json
  std::string t5;           // models_t5_umt5-xxl-enc-bf16.pth
  std::string tokenizer;    // the google/umt5-xxl folder (or its spiece.model)
  std::string clip;         // I2V: models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth
  std::string clip_config;  // I2V: only for non-standard CLIP towers
  std::string vae;          // Wan2.1_VAE.pth
};

// One generation: the options of `x2v generate`. Strings left empty and optionals left unset take
// the defaults; names in comments are the CLI's options.
struct Options {
  std::string task;  // "t2v" (default) or "i2v"    --task
  ModelFiles model;
  std::string prompt;                          // --prompt
  std::optional<std::string> negative_prompt;  // --negative-prompt (default: the reference's)
  std::string image;                           // --image: I2V first frame (PNG or JPEG)

  std::optional<int> width, height;  // --size: T2V size (832x480); I2V: their product is the pixel budget
  std::optional<int64_t> max_area;   // --max-area: I2V pixel budget (399360)
  std::optional<int> frames;         // --frames: 4n+1 (81)
  std::optional<int> steps;          // --steps (50 t2v, 40 i2v, 4 distilled)
  std::optional<double> shift;       // --shift (5; 3 for 480p i2v)
  std::optional<double> guide_scale;  // --guide-scale (5; 1 turns guidance off)
  std::optional<bool> enable_cfg;     // LightX2V's enable_cfg
  std::string solver;                 // --solver: "unipc" (default), "dpm++", "euler"
  std::vector<int> step_list;         // --step-list: a step-distilled model's timesteps (implies euler)
  std::optional<int64_t> seed;        // --seed (absent or negative: random; Result::seed tells)
  std::optional<int> fps;             // --fps (16)

  // Reproduction: stored tensors replacing a stage's output (see the README).
  std::string text_embeddings, clip_embeddings, noise;

  std::string output;         // -o: OUT.mp4, or FOLDER/ for PNG frames
  std::string output_tensor;  // --output-tensor: the video [3, F, H, W] f32 in [-1, 1] (safetensors)
  std::string device;         // --device: "cpu" (default) or "cuda"

  // LightX2V-style configuration (infer_steps, sample_shift, target_width, ...), applied first:
  // a file (--config) and/or the text of a JSON object (after the file). The fields above win.
  std::string config_file;
  std::string config_json;

  // --demo: build the tiny random-weight demo model in a temporary folder (removed afterwards) and
  // run it; sizes, frames, steps and seed default to the demo's. Leave `model` empty.
  bool demo = false;
};

// A progress report. Stages nest (depth 0 is top level); the steps of a stage increase.
struct ProgressInfo {
  enum class Event { StageBegin, Step, StageEnd };
  Event event = Event::Step;
  std::string_view stage;  // "text encoder", "denoise", "VAE decode", "write", ...; valid during the call
  int depth = 0;
  int64_t step = 0;        // steps done (0 at StageBegin; the steps done at StageEnd)
  int64_t total = 0;       // steps in the stage (0 if unknown)
  double seconds = 0;      // since the stage began
  double step_seconds = 0;  // mean time per step (0 until known)
  double eta_seconds = -1;  // time left in the stage (-1 if unknown)
};
// To stop a generation, throw from the callback (e.g. Exception(Status::Cancelled, "...")): the
// work unwinds, no output is written, and generate() rethrows that exception. A stage's end cannot
// be stopped (it also arrives while a failure unwinds): an exception thrown at a StageEnd event
// stops the work at the next StageBegin or Step event, and is dropped if none follows (the
// outputs are then complete).
using ProgressCallback = std::function<void(const ProgressInfo&)>;

struct StageTiming {
  std::string name;
  double seconds = 0;
};

struct Result {
  std::vector<std::string> outputs;  // the files written, in order (video or frame folder, tensor)
  std::vector<StageTiming> stages;   // every timed stage, in the order it finished
  std::vector<std::string> warnings;  // about the options (LightX2V keys not applied, ...)
  int width = 0, height = 0, frames = 0, fps = 0;
  uint64_t seed = 0;                 // the seed used
  int64_t peak_host_bytes = 0;       // peak resident memory of the process
  int64_t peak_device_bytes = 0;     // 0 when nothing ran on a GPU
};

// Checks the options, runs the generation, writes the outputs (each whole or not at all). Throws
// Exception; nothing is written when it throws.
Result generate(const Options& options, const ProgressCallback& progress = {});

// Asks the generation running now (called from any thread) to stop at its next step or VAE chunk;
// its generate() then throws Exception(Status::Cancelled) and writes nothing. Returns false when
// no generation is running (a later one is not affected). Any thread may call it, including the
// progress callback; not a signal handler.
bool cancel();

}  // namespace x2v
