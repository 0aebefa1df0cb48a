// `x2v run-component sampler`: run a flow-matching solver over given model outputs, the way to check
// the sampler against the reference without a network.
//   options: --solver unipc|dpm++|euler, --steps N, --shift S, --step-list 1000,750,500,250 (euler)
//   inputs:  x_init (the initial latent, any shape), v0 ... v{N-1} (the model output at each step,
//            x_init's shape)
//   outputs: timesteps [N] (what the DiT would receive), sigmas [N+1] (last 0), and x0 ... x{N-1},
//            the state after each step (x{N-1} is the final x0), all f32
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "run_component.h"
#include "sched/sampler.h"

namespace x2v::cli {
namespace {

struct SamplerOptions {
  ComponentPaths paths;
  std::string solver = "unipc";
  int steps = 0;
  double shift = 5.0;
  std::string step_list;
};

std::vector<int> parse_step_list(const std::string& text) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(pos, comma - pos);
    errno = 0;
    char* end = nullptr;
    const long v = item.empty() ? 0 : std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno == ERANGE || v < -1000000 || v > 1000000)
      fail(ErrorKind::InvalidArgument, "--step-list \"", text, "\": \"", item,
           "\" is not an integer; give comma-separated timesteps like 1000,750,500,250");
    out.push_back(static_cast<int>(v));
    pos = comma + 1;
  }
  return out;
}

Tensor vector_tensor(const std::vector<float>& v) { return Tensor::from_f32(v, {static_cast<int64_t>(v.size())}); }

int run_sampler(const SamplerOptions& o) {
  sched::SamplerConfig cfg;
  cfg.solver = sched::parse_solver(o.solver);
  cfg.steps = o.steps;
  cfg.shift = o.shift;
  if (!o.step_list.empty()) cfg.step_list = parse_step_list(o.step_list);
  std::unique_ptr<sched::Sampler> sampler = sched::make_sampler(cfg);  // validates before any file is read

  ComponentInputs in(o.paths.inputs);
  if (!in.has("x_init"))
    fail(ErrorKind::InvalidArgument, o.paths.inputs, ": the sampler inputs need \"x_init\" (the initial latent)");
  for (int i = 0; i < cfg.steps; ++i) {
    const std::string name = "v" + std::to_string(i);
    if (!in.has(name))
      fail(ErrorKind::InvalidArgument, o.paths.inputs, ": the sampler inputs need \"", name, "\": ", cfg.steps,
           " steps take model outputs v0 ... v", cfg.steps - 1, " (or pass fewer --steps)");
  }
  Tensor x = in.f32("x_init", -1);
  std::vector<std::pair<std::string, Tensor>> outs;
  outs.emplace_back("timesteps", vector_tensor(sampler->timesteps()));
  outs.emplace_back("sigmas", vector_tensor(sampler->sigmas()));
  for (int i = 0; i < cfg.steps; ++i) {
    const std::string name = "v" + std::to_string(i);
    Tensor v = in.f32(name, -1);
    if (v.shape() != x.shape())
      fail(ErrorKind::InvalidArgument, o.paths.inputs, ": input \"", name, "\" has shape ", shape_str(v.shape()),
           " but x_init has ", shape_str(x.shape()), "; every model output has the latent's shape");
    x = sampler->step(v, x);
    outs.emplace_back("x" + std::to_string(i), x);
  }
  write_component_outputs(o.paths.output, outs);
  return 0;
}

RegisterComponent reg{{"sampler",
                       "Flow-matching solver over given model outputs: x_init, v0..v{N-1} -> timesteps, sigmas, "
                       "x0..x{N-1} (the state after each step)",
                       [](CLI::App& sub) {
                         auto o = std::make_shared<SamplerOptions>();
                         sub.add_option("--solver", o->solver,
                                        "unipc (Wan's default), dpm++, or euler (step-distilled models)")
                             ->capture_default_str();
                         sub.add_option("--steps", o->steps, "number of solver steps (model evaluations)")->required();
                         sub.add_option("--shift", o->shift, "sigma shift (Wan: 3 to 16)")->capture_default_str();
                         sub.add_option("--step-list", o->step_list,
                                        "euler only: the distilled model's timesteps, e.g. 1000,750,500,250 "
                                        "(the default)");
                         add_component_options(sub, o->paths, false);
                         return [o] { return run_sampler(*o); };
                       }}};

}  // namespace
}  // namespace x2v::cli
