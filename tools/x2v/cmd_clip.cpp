// `x2v run-component clip`: Wan's CLIP image encoder (ViT-H/14 vision tower) on an image from a file,
// preprocessing included, the way to check a CLIP checkpoint against the reference.
//   inputs  image [3, H, W] float in [-1, 1] (RGB, channels first, any size: stretched to image_size)
//   output  out [tokens, dim] (output of all blocks but the last; 257 x 1280 for ViT-H/14)
#include <memory>

#include "models/wan/clip.h"
#include "run_component.h"

namespace x2v::cli {
namespace {

int run(const ComponentPaths& p) {
  ComponentInputs in(p.inputs);  // inputs are checked before the weights are read
  if (!in.has("image"))
    fail(ErrorKind::InvalidArgument, p.inputs, ": the clip inputs need \"image\" [3, H, W] float in [-1, 1]");
  Tensor image = in.f32("image", 3);
  if (image.size(0) != 3)
    fail(ErrorKind::InvalidArgument, p.inputs, ": input \"image\" has shape ", shape_str(image.shape()),
         "; CLIP takes an RGB image [3, H, W] (3 channels, channels first)");
  if (image.size(1) < 1 || image.size(2) < 1 || image.size(1) > 16384 || image.size(2) > 16384)
    fail(ErrorKind::InvalidArgument, p.inputs, ": input \"image\" has shape ", shape_str(image.shape()),
         "; height and width must be 1 to 16384");
  models::wan::EncoderConfigJson cfg = p.config.empty() ? models::wan::EncoderConfigJson() : models::wan::EncoderConfigJson(p.config);
  const models::wan::ClipVisionEncoder clip = models::wan::ClipVisionEncoder::load(p.weights, std::move(cfg), p.load_options());
  write_component_outputs(p.output, {{"out", clip.encode(image)}});
  return 0;
}

RegisterComponent reg{{"clip",
                       "Wan CLIP image encoder: image [3, H, W] in [-1, 1] -> out [tokens, dim] (bicubic resize, "
                       "CLIP mean/std, all blocks but the last; config: dim, image_size, patch_size, num_heads, "
                       "num_layers, mlp_ratio, norm_eps, ...; num_heads defaults to ViT-H's 16)",
                       [](CLI::App& sub) {
                         auto p = std::make_shared<ComponentPaths>();
                         add_component_options(sub, *p, true);
                         return [p] { return run(*p); };
                       }}};

}  // namespace
}  // namespace x2v::cli
