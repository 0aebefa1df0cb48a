// Which Wan network a weight file holds, from its tensor names and shapes (as ComfyUI detects).
#pragma once

#include <string>
#include <vector>

#include "io/weights.h"

namespace x2v::models::wan {

enum class Kind { Unknown, DiT, T5, CLIP, VAE21, VAE22 };
const char* kind_name(Kind k);

// Name prefix the DiT tensors carry in this file ("" for official files,
// "model.diffusion_model." for some ComfyUI files); whether the names are diffusers'.
struct Layout {
  Kind kind = Kind::Unknown;
  std::string prefix;
  bool diffusers = false;
};
Layout detect(const io::WeightStore& w);

// Human-readable lines for `x2v info`: kind, and the configuration inferred from shapes.
std::vector<std::string> describe(const io::WeightStore& w);

}  // namespace x2v::models::wan
