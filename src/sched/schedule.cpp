// Schedules (timesteps and sigmas) of the three solvers, with the reference's exact arithmetic:
// numpy float64 for unipc and dpm++ (then int64 truncation of the timesteps and a float32 cast of
// the sigmas), torch float32 for LightX2V's step-distill grid.
#include <cmath>
#include <cstdint>
#include <sstream>

#include "sched/sampler.h"

// The reference rounds after every operation; keep the compiler from fusing a*b+c into an FMA.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace x2v::sched {

const char* solver_name(Solver s) {
  switch (s) {
    case Solver::UniPC: return "unipc";
    case Solver::DPMpp: return "dpm++";
    case Solver::Euler: return "euler";
  }
  return "?";
}

Solver parse_solver(std::string_view name) {
  if (name == "unipc") return Solver::UniPC;
  if (name == "dpm++") return Solver::DPMpp;
  if (name == "euler") return Solver::Euler;
  fail(ErrorKind::InvalidArgument, "unknown solver \"", name,
       "\"; use unipc (Wan's default), dpm++ or euler (step-distilled models)");
}

namespace {

std::string list_str(const std::vector<int>& l) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < l.size(); ++i) os << (i ? "," : "") << l[i];
  os << "]";
  return os.str();
}

// numpy.linspace(start, stop, num) in float64: y[i] = i·((stop − start)/(num − 1)) + start, with
// the last element set to `stop`.
std::vector<double> np_linspace(double start, double stop, int num) {
  std::vector<double> y(num);
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (int i = 0; i < num; ++i) y[i] = static_cast<double>(i) * step + start;
  y[num - 1] = stop;
  return y;
}

double shift_f64(double s, double sigma) { return s * sigma / (1.0 + (s - 1.0) * sigma); }

// Wan's unipc/dpm++ schedule from unshifted float64 sigmas (N of them): shift, timesteps =
// int64(1000·σ'), sigmas = float32(σ') followed by 0.
Schedule truncated_schedule(const std::vector<double>& sig, double shift) {
  Schedule s;
  for (double x : sig) {
    const double sh = shift_f64(shift, x);
    s.timesteps.push_back(static_cast<float>(static_cast<int64_t>(sh * kTrainTimesteps)));
    s.sigmas.push_back(static_cast<float>(sh));
  }
  s.sigmas.push_back(0.f);
  return s;
}

// FlowUniPCMultistepScheduler.set_timesteps(N, shift): the training sigmas are
// 1 − linspace(1, 1/1000, 1000) reversed, stored as float32, so σ_max = float32(0.999) and σ_min = 0.
Schedule unipc_schedule(int n, double shift) {
  const double sigma_max = static_cast<double>(static_cast<float>(1.0 - 1.0 / kTrainTimesteps));
  std::vector<double> sig = np_linspace(sigma_max, 0.0, n + 1);
  sig.pop_back();
  return truncated_schedule(sig, shift);
}

// get_sampling_sigmas(N, shift) = shift(linspace(1, 0, N+1)[:N]), passed to the scheduler as
// explicit sigmas (its own shift is 1, an exact identity).
Schedule dpm_schedule(int n, double shift) {
  std::vector<double> sig = np_linspace(1.0, 0.0, n + 1);
  sig.pop_back();
  return truncated_schedule(sig, shift);
}

// torch.linspace(1, 0, 1001) in float32 on the CPU. PyTorch's kernel computes
// start + step·i for the first half and end − step·(steps − 1 − i) for the second, but in SIMD
// chunks of kVec lanes (two chunks per loop turn) it evaluates base + j·step from each chunk's
// base instead, so ~1/4 of the values differ from the scalar formula by an ulp. This reproduces
// the AVX-512 build (16 float lanes), what PyTorch uses on the x86 hosts of H100 machines. The
// default step list [1000, 750, 500, 250] gets the same sigmas with any lane count.
std::vector<float> torch_linspace_f32_1001() {
  constexpr int64_t kSteps = kTrainTimesteps + 1;
  constexpr int64_t kVec = 16;
  const float start = 1.f, end = 0.f;
  const float step = (end - start) / static_cast<float>(kSteps - 1);
  const int64_t halfway = kSteps / 2;
  auto at = [&](int64_t i) {
    return i < halfway ? start + step * static_cast<float>(i) : end - step * static_cast<float>(kSteps - i - 1);
  };
  std::vector<float> y(kSteps);
  int64_t i = 0;
  for (; i + 2 * kVec <= kSteps; i += 2 * kVec) {
    for (int64_t c = i; c < i + 2 * kVec; c += kVec) {
      const float base = at(c);
      for (int64_t j = 0; j < kVec; ++j) y[c + j] = base + static_cast<float>(j) * step;
    }
  }
  for (; i < kSteps; ++i) y[i] = at(i);
  return y;
}

// WanStepDistillScheduler.set_denoising_timesteps: the 1000-point grid shifted in float32,
// timesteps = 1000·σ' (float32, not truncated), both picked at index 1000 − s.
Schedule distill_schedule(const std::vector<int>& list, double shift) {
  const std::vector<float> grid = torch_linspace_f32_1001();
  const float s = static_cast<float>(shift);
  const float s1 = static_cast<float>(shift - 1.0);
  Schedule out;
  for (int t : list) {
    const float x = grid[kTrainTimesteps - t];
    const float sh = (s * x) / (1.f + s1 * x);
    out.sigmas.push_back(sh);
    out.timesteps.push_back(sh * static_cast<float>(kTrainTimesteps));
  }
  out.sigmas.push_back(0.f);
  return out;
}

}  // namespace

Schedule make_schedule(const SamplerConfig& cfg) {
  const char* name = solver_name(cfg.solver);
  if (cfg.steps < 1)
    fail(ErrorKind::InvalidArgument, "sampler: the number of steps must be at least 1 (got ", cfg.steps, ")");
  if (cfg.steps > kMaxSteps)
    fail(ErrorKind::InvalidArgument, "sampler: ", cfg.steps, " steps is more than the ", kMaxSteps,
         " training timesteps; use at most ", kMaxSteps, " (Wan uses 40 or 50, distilled models 4)");
  if (!std::isfinite(cfg.shift) || cfg.shift <= 0)
    fail(ErrorKind::InvalidArgument, "sampler: the shift must be a positive number (got ", cfg.shift,
         "); Wan uses 3 to 16, 1 means no shift");

  Schedule s;
  if (cfg.solver == Solver::Euler) {
    const std::vector<int>& list = cfg.step_list.empty() ? default_step_list() : cfg.step_list;
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i] < 1 || list[i] > kTrainTimesteps)
        fail(ErrorKind::InvalidArgument, "sampler: step list ", list_str(list), " has ", list[i],
             "; every entry must be in 1..", kTrainTimesteps);
      if (i > 0 && list[i] >= list[i - 1])
        fail(ErrorKind::InvalidArgument, "sampler: step list ", list_str(list),
             " is not strictly decreasing; list the timesteps from high noise to low, e.g. 1000,750,500,250");
    }
    if (static_cast<int>(list.size()) != cfg.steps)
      fail(ErrorKind::InvalidArgument, "sampler: ", cfg.steps, " steps but the euler step list ", list_str(list),
           " has ", list.size(), "; give a step list with one entry per step (or ", list.size(), " steps)");
    s = distill_schedule(list, cfg.shift);
  } else {
    if (!cfg.step_list.empty())
      fail(ErrorKind::InvalidArgument, "sampler: a step list is only used by the euler solver (distilled models); ",
           name, " spaces its ", cfg.steps, " steps itself, so drop the step list");
    s = cfg.solver == Solver::UniPC ? unipc_schedule(cfg.steps, cfg.shift) : dpm_schedule(cfg.steps, cfg.shift);
    // The reference locates its first step by searching the timestep table and takes the second
    // match when the first timestep repeats, which breaks the run.
    if (cfg.steps >= 2 && s.timesteps[0] == s.timesteps[1])
      fail(ErrorKind::InvalidArgument, "sampler: with ", cfg.steps, " steps and shift ", cfg.shift,
           " the first two ", name, " timesteps are both ", s.timesteps[0],
           ", which the reference solver cannot run; use fewer steps or a smaller shift");
  }
  for (int k = 0; k < cfg.steps; ++k)
    if (!(s.sigmas[k] > s.sigmas[k + 1]))
      fail(ErrorKind::InvalidArgument, "sampler: with shift ", cfg.shift, " the ", name, " noise levels of steps ", k,
           " and ", k + 1, " are equal in float32 (", s.sigmas[k], "); use a smaller shift or fewer steps");
  return s;
}

}  // namespace x2v::sched
