// `x2v run-component vae-encode` / `vae-decode`: the Wan VAE (2.1 or 2.2, found from the weights) on
// tensors from a file, the way to check a VAE checkpoint against the reference.
//   vae-encode: inputs  video [3, T, H, W] in [-1, 1] (H, W multiples of 8, or 16 for Wan2.2; frames
//                       past the last 1+4n are dropped, as the reference does)
//               output  latent [z_dim, 1+(T-1)/4, H/s, W/s], normalized with the latent mean/std
//   vae-decode: inputs  z [z_dim, t, h, w] (normalized latent)
//               outputs decoded [3, 1+4(t-1), h·s, w·s] clamped to [-1, 1], decoded_unclamped
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "models/wan/vae.h"
#include "run_component.h"

namespace x2v::cli {
namespace {

using models::wan::WanVAE;

WanVAE load_vae(const ComponentPaths& p) { return WanVAE::load(p.weights, p.config, p.load_options()); }

// A one-line counter on a terminal; nothing when stderr is a file or pipe.
models::wan::VaeProgress progress_line(const char* what) {
  if (!isatty(STDERR_FILENO)) return {};
  return [what](int64_t done, int64_t total) {
    std::fprintf(stderr, "\r%s: %lld/%lld%s", what, static_cast<long long>(done), static_cast<long long>(total),
                 done == total ? "\n" : "");
  };
}

int run_encode(const ComponentPaths& p) {
  ComponentInputs in(p.inputs);  // inputs are checked before the (large) weights are read
  if (!in.has("video"))
    fail(ErrorKind::InvalidArgument, p.inputs, ": the vae-encode inputs need \"video\" [3, T, H, W] in [-1, 1]");
  Tensor video = in.f32("video", 4);
  if (video.size(0) != 3)
    fail(ErrorKind::InvalidArgument, p.inputs, ": input \"video\" has shape ", shape_str(video.shape()),
         "; the VAE takes RGB video [3, T, H, W] (channels first)");
  WanVAE vae = load_vae(p);
  vae.latent_shape(video.shape());  // size rules, before any work
  Tensor latent = vae.encode(video, progress_line("vae-encode"));
  write_component_outputs(p.output, {{"latent", latent}});
  return 0;
}

int run_decode(const ComponentPaths& p) {
  ComponentInputs in(p.inputs);
  if (!in.has("z")) fail(ErrorKind::InvalidArgument, p.inputs, ": the vae-decode inputs need \"z\" [z_dim, t, h, w]");
  Tensor z = in.f32("z", 4);
  WanVAE vae = load_vae(p);
  if (z.size(0) != vae.config().z_dim)
    fail(ErrorKind::InvalidArgument, p.inputs, ": input \"z\" has shape ", shape_str(z.shape()), " but this VAE (",
         vae.config().summary(), ") takes ", vae.config().z_dim, " latent channels");
  Tensor raw;
  Tensor decoded = vae.decode(z, &raw, progress_line("vae-decode"));
  write_component_outputs(p.output, {{"decoded", decoded}, {"decoded_unclamped", raw}});
  return 0;
}

RegisterComponent enc{{"vae-encode",
                       "Wan VAE encoder: video [3, T, H, W] in [-1, 1] -> latent [z_dim, 1+(T-1)/4, H/8, W/8] "
                       "(normalized; /16 for Wan2.2)",
                       [](CLI::App& sub) {
                         auto p = std::make_shared<ComponentPaths>();
                         add_component_options(sub, *p, true);
                         return [p] { return run_encode(*p); };
                       }}};

RegisterComponent dec{{"vae-decode",
                       "Wan VAE decoder: z [z_dim, t, h, w] -> decoded (clamped to [-1, 1]) and decoded_unclamped "
                       "[3, 1+4(t-1), 8h, 8w] (16h, 16w for Wan2.2)",
                       [](CLI::App& sub) {
                         auto p = std::make_shared<ComponentPaths>();
                         add_component_options(sub, *p, true);
                         return [p] { return run_decode(*p); };
                       }}};

}  // namespace
}  // namespace x2v::cli
