// `x2v run-component dit`: one DiT evaluation, the way to check a checkpoint against the reference.
//   inputs: x [C, F, H, W], t (scalar, [1], or one per token), context [L, text_dim];
//           CLIP-branch models also clip_fea [257, 1280]; I2V/FLF2V models also y [C_y, F, H, W]
//   output: out [out_dim, F, H, W] f32
#include "models/wan/dit.h"
#include "run_component.h"

namespace x2v::cli {
namespace {

int run_dit(const ComponentPaths& p) {
  ComponentInputs in(p.inputs);  // open (and validate) the inputs before the possibly large weights
  for (const char* name : {"x", "t", "context"})
    if (!in.has(name))
      fail(ErrorKind::InvalidArgument, p.inputs, ": the DiT inputs need \"", name,
           "\" (x [C, F, H, W] latent, t timestep, context [L, text_dim])");
  models::wan::DitModel model = models::wan::DitModel::load(p.weights, p.config, p.load_options());
  const models::wan::DitConfig& c = model.config();
  models::wan::DitInputs d;
  d.x = in.f32("x", 4);
  d.t = in.f32("t", -1);
  d.context = in.f32("context", 2);
  if (c.clip_branch) {
    if (!in.has("clip_fea"))
      fail(ErrorKind::InvalidArgument, p.inputs, ": this ", c.model_type, " DiT needs \"clip_fea\" [", c.clip_tokens(),
           ", 1280] (the CLIP image features) in the inputs");
    d.clip_fea = in.f32("clip_fea", -1);
  }
  if (c.takes_y()) {
    if (!in.has("y"))
      fail(ErrorKind::InvalidArgument, p.inputs, ": this ", c.model_type, " DiT needs \"y\" [", c.in_dim - c.out_dim,
           ", F, H, W] (mask and image latent) in the inputs");
    d.y = in.f32("y", 4);
  }
  Tensor out = model.forward(d);
  write_component_outputs(p.output, {{"out", out}});
  return 0;
}

RegisterComponent reg{{"dit",
                       "Wan DiT: x, t, context (+ clip_fea, y for I2V) -> out, the flow velocity [out_dim, F, H, W]",
                       [](CLI::App& sub) {
                         auto p = std::make_shared<ComponentPaths>();
                         add_component_options(sub, *p, true);
                         return [p] { return run_dit(*p); };
                       }}};

}  // namespace
}  // namespace x2v::cli
