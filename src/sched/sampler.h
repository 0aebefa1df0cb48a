// Flow-matching samplers for Wan (docs/wan-spec.md §7), reproducing the reference schedules exactly.
//
// Convention: x_σ = (1 − σ)·x0 + σ·ε, the DiT predicts v = ε − x0, so x0 = x − σ·v.
// A sampler is built from a validated SamplerConfig. It owns the schedule:
//   timesteps()  what the DiT receives at step k (N values, as float): int64-truncated 1000·σ' for
//                unipc and dpm++ (the reference truncates), the float 1000·σ' for euler (LightX2V
//                feeds floats);
//   sigmas()     the noise level of the input of step k, then 0 (N + 1 values, float32 as the
//                reference stores them; the solvers use these, not the truncated timesteps).
// step(v, x) takes the model output v at the current state x (same shape, f32 or any float dtype,
// on the device the ops support) and returns the state for the next step; after the last step it
// returns the final x0. Multistep solvers keep the history they need; reset() forgets it.
//
// Solvers:
//   unipc  FlowUniPCMultistepScheduler: order 2, bh2, x0 prediction, lower_order_final, UniC
//          corrector, sigmas linspace(σ_max = f32(0.999), 0, N+1)[:-1] shifted in float64.
//   dpm++  FlowDPMSolverMultistepScheduler: DPM-Solver++ 2M midpoint, sigmas
//          linspace(1, 0, N+1)[:N] shifted in float64 (σ_0 = 1, handled explicitly).
//   euler  LightX2V's WanStepDistillScheduler for step-distilled models: σ = shift(torch
//          linspace(1, 0, 1001)[:-1]) in float32, picked at 1000 − s for each s of the step list;
//          x ← x − σ_k v + σ_{k+1} v, last step x − σ v.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace x2v::sched {

enum class Solver { UniPC, DPMpp, Euler };

const char* solver_name(Solver s);  // "unipc", "dpm++", "euler"
// InvalidArgument naming the accepted names if `name` is none of them.
Solver parse_solver(std::string_view name);

constexpr int kTrainTimesteps = 1000;  // num_train_timesteps of every Wan scheduler
constexpr int kMaxSteps = 1000;        // more steps than training timesteps is not a schedule
// LightX2V's 4-step list for the Wan2.1/2.2 StepDistill models.
inline const std::vector<int>& default_step_list() {
  static const std::vector<int> l = {1000, 750, 500, 250};
  return l;
}

struct SamplerConfig {
  Solver solver = Solver::UniPC;
  int steps = 50;
  double shift = 5.0;
  // euler only: the distilled model's step list (strictly decreasing, each in 1..1000); empty
  // means default_step_list(). Its length must equal `steps`.
  std::vector<int> step_list;
};

struct Schedule {
  std::vector<float> timesteps;  // N
  std::vector<float> sigmas;     // N + 1, last 0
};

// Checks the configuration and builds its schedule; InvalidArgument with what to change on a
// bad configuration (steps < 1 or > kMaxSteps, shift not a positive finite number, a step list
// that is not strictly decreasing in 1..1000 or does not match `steps`, a step list given to a
// solver that does not use one, a schedule the reference solver cannot run).
Schedule make_schedule(const SamplerConfig& cfg);

class Sampler {
 public:
  virtual ~Sampler() = default;
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  const SamplerConfig& config() const { return cfg_; }
  int steps() const { return cfg_.steps; }
  const std::vector<float>& timesteps() const { return sched_.timesteps; }
  const std::vector<float>& sigmas() const { return sched_.sigmas; }
  int step_index() const { return k_; }  // steps taken so far
  bool done() const { return k_ >= cfg_.steps; }
  // The timestep to feed the DiT for the next step.
  float timestep() const;

  // One solver step: v = model output at state x; returns the next state (f32, x's shape).
  Tensor step(const Tensor& v, const Tensor& x);
  void reset();

 protected:
  Sampler(SamplerConfig cfg, Schedule sched) : cfg_(std::move(cfg)), sched_(std::move(sched)) {}
  // Step k of the solver on f32 tensors of one shape.
  virtual Tensor update(int k, const Tensor& v, const Tensor& x) = 0;
  virtual void clear_history() = 0;

 private:
  SamplerConfig cfg_;
  Schedule sched_;
  int k_ = 0;
  Shape shape_;
};

// Validates `cfg` (see make_schedule) and builds the solver.
std::unique_ptr<Sampler> make_sampler(const SamplerConfig& cfg);

// Classifier-free guidance as the reference computes it: v_u + g·(v_c − v_u), in f32.
Tensor cfg_combine(const Tensor& v_uncond, const Tensor& v_cond, float guidance);

}  // namespace x2v::sched
