// Wan2.1 text-to-video and image-to-video, computing what the reference's generate() computes
// (wan/text2video.py, wan/image2video.py; docs/wan-spec.md §2.2, §6.1, §7):
//
//   prompt ─ clean ─ tokenize ─ T5 ──► context, context_null          (or --text-embeddings)
//   image ─ CLIP ──► clip_fea;  image ─ bicubic ─ VAE.encode ─► y = [mask, latent]   (I2V)
//   noise ─ N × [ DiT(x, t, context) (and DiT(x, t, context_null): CFG) ─ solver step ] ─ VAE.decode ──► video
//
// The DiT receives the solver's timestep (integer-truncated for unipc and dpm++, as the reference);
// guidance is two separate passes combined as v_u + g·(v_c − v_u); step-distilled models and a
// guide scale of 1 run one pass per step.
#pragma once

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/tensor.h"
#include "pipeline/request.h"

namespace x2v::pipeline {

struct StageTime {
  std::string name;
  double seconds = 0;
};

struct GenerateResult {
  Tensor video;  // [3, F, H, W] f32 in [-1, 1] (decoded, clamped)
  int width = 0, height = 0, frames = 0;
  uint64_t seed = 0;
  std::vector<StageTime> stages;
  size_t peak_host_bytes = 0;    // peak resident memory of the process
  size_t peak_device_bytes = 0;  // 0 on the CPU
  std::vector<std::string> written;  // the output files, in the order they were written
};

// Thrown when the run was cancelled (see generate's `cancel`); nothing was written.
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
};

// Runs a resolved request end to end and writes its outputs (each whole or not at all). Stages
// and denoising steps are reported to `progress` (may be null). When `cancel` becomes true (a
// signal handler, a server's cancel request) the run stops at the next step or chunk and throws
// Cancelled.
GenerateResult generate(const GenerateSettings& s, Progress* progress = nullptr,
                        const std::atomic<bool>* cancel = nullptr);

// Checks before any work that every output can be written: the folder exists and is writable, the
// extension is known, MP4 support is built in. InvalidArgument / Io / Unsupported.
void check_outputs(const GenerateSettings& s);

}  // namespace x2v::pipeline
