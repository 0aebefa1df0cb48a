// The solver steps, written with the elementwise ops so they run wherever the state lives. Each
// scalar coefficient is computed in float32 exactly as the reference does (its sigmas are float32
// tensors), and each elementwise expression is split into ops that round where PyTorch rounds:
// axpby(a, α, b, β) = round(round(α·a) + round(β·b)) is the reference's `α * a - γ * b` with β = −γ.
// One deviation: the reference divides a difference by r_k, the ops multiply by float32(1/r_k)
// (at most one ulp in that correction term).
#include "sched/sampler.h"

#include <algorithm>
#include <cmath>

#include "ops/elementwise.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace x2v::sched {

float Sampler::timestep() const {
  if (done())
    fail(ErrorKind::InvalidArgument, "sampler: all ", steps(), " steps were taken; reset() to sample again");
  return sched_.timesteps[k_];
}

Tensor Sampler::step(const Tensor& v, const Tensor& x) {
  if (done())
    fail(ErrorKind::InvalidArgument, "sampler: all ", steps(), " steps were taken; reset() to sample again");
  if (!v.defined() || !x.defined()) fail(ErrorKind::InvalidArgument, "sampler: step needs a model output and a state");
  if (!dtype_is_float(v.dtype()) || !dtype_is_float(x.dtype()))
    fail(ErrorKind::InvalidArgument, "sampler: model output ", v.desc(), " and state ", x.desc(), " must be float tensors");
  if (v.shape() != x.shape())
    fail(ErrorKind::InvalidArgument, "sampler: model output ", v.desc(), " and state ", x.desc(), " differ in shape");
  if (v.device() != x.device())
    fail(ErrorKind::InvalidArgument, "sampler: model output on ", device_name(v.device()), " but state on ",
         device_name(x.device()));
  if (k_ > 0 && x.shape() != shape_)
    fail(ErrorKind::InvalidArgument, "sampler: step ", k_, " got a state of shape ", shape_str(x.shape()),
         " but earlier steps had ", shape_str(shape_), "; reset() before sampling a new latent");
  Tensor vf = v.dtype() == DType::F32 ? v : v.to(DType::F32);
  Tensor xf = x.dtype() == DType::F32 ? x : x.to(DType::F32);
  Tensor out = update(k_, vf, xf);
  shape_ = x.shape();
  ++k_;
  return out;
}

void Sampler::reset() {
  k_ = 0;
  shape_.clear();
  clear_history();
}

namespace {

// λ(σ) = ln(α) − ln(σ) with α = 1 − σ, in float32 like the reference's 0-d tensors.
float lambda(float sigma) { return std::log(1.f - sigma) - std::log(sigma); }

// a − b
Tensor diff(const Tensor& a, const Tensor& b) { return ops::axpby(a, 1.f, b, -1.f); }

// FlowUniPCMultistepScheduler (solver_order 2, bh2, predict_x0, lower_order_final, UniC corrector
// after every step but the first). Per step k with x0 prediction m_k = x_k − σ_k·v_k:
// correct x_k with m_k (UniC, order of the previous predictor), then predict x_{k+1} (UniP, order
// min(2, N − k, k + 1)). The last step goes to σ = 0 where the update is exactly m_{N−1}.
class UniPC final : public Sampler {
 public:
  UniPC(SamplerConfig c, Schedule s) : Sampler(std::move(c), std::move(s)) {}

 private:
  Tensor m1_, m2_;  // m_{k−1}, m_{k−2}
  Tensor last_x_;   // x_{k−1} after its correction: the sample the previous predictor started from
  int last_order_ = 0;

  void clear_history() override {
    m1_ = m2_ = last_x_ = Tensor();
    last_order_ = 0;
  }

  // [[1, 1], [r, 1]]·ρ = [b1, b2] as LAPACK's sgesv does it (LU with partial pivoting, float32).
  static void solve2(float r, float b1, float b2, float* rho0, float* rho1) {
    if (std::fabs(r) > 1.f) {  // pivot: rows swapped
      const float l = 1.f / r;
      const float u22 = 1.f - l;
      const float y2 = b1 - l * b2;
      *rho1 = y2 / u22;
      *rho0 = (b2 - *rho1) / r;
    } else {
      const float u22 = 1.f - r;
      const float y2 = b2 - r * b1;
      *rho1 = y2 / u22;
      *rho0 = b1 - *rho1;
    }
  }

  // UniC: returns the corrected x_k.
  Tensor correct(int k, const Tensor& m) {
    const auto& s = sigmas();
    const float st = s[k], ss0 = s[k - 1];
    const float at = 1.f - st;
    const float ls0 = lambda(ss0);
    const float h = lambda(st) - ls0;
    const float hh = -h;
    const float h_phi_1 = std::expm1(hh);
    const float b_h = std::expm1(hh);  // bh2
    Tensor base = ops::axpby(last_x_, st / ss0, m1_, -(at * h_phi_1));
    Tensor d1_t = diff(m, m1_);
    Tensor corr;
    if (last_order_ == 1) {
      corr = ops::scale(d1_t, 0.5f);
    } else {
      const float rk = (lambda(s[k - 2]) - ls0) / h;
      float h_phi_k = h_phi_1 / hh - 1.f;
      const float b1 = (h_phi_k * 1.f) / b_h;
      h_phi_k = h_phi_k / hh - 0.5f;
      const float b2 = (h_phi_k * 2.f) / b_h;
      float rho0, rho1;
      solve2(rk, b1, b2, &rho0, &rho1);
      Tensor d1 = ops::scale(diff(m2_, m1_), 1.f / rk);
      corr = ops::axpby(d1, rho0, d1_t, rho1);
    }
    return ops::axpby(base, 1.f, corr, -(at * b_h));
  }

  // UniP from x_k (corrected) to σ_{k+1} > 0.
  Tensor predict(int k, int order, const Tensor& x, const Tensor& m) {
    const auto& s = sigmas();
    const float st = s[k + 1], ss0 = s[k];
    const float at = 1.f - st;
    const float ls0 = lambda(ss0);
    const float h = lambda(st) - ls0;
    const float hh = -h;
    const float h_phi_1 = std::expm1(hh);
    const float b_h = std::expm1(hh);
    Tensor xt = ops::axpby(x, st / ss0, m, -(at * h_phi_1));
    if (order == 2) {
      const float rk = (lambda(s[k - 1]) - ls0) / h;
      Tensor d1 = ops::scale(diff(m1_, m), 1.f / rk);
      // x_t − (α_t·B_h)·(0.5·D1); halving is exact, so fold it into the coefficient.
      xt = ops::axpby(xt, 1.f, d1, -0.5f * (at * b_h));
    }
    return xt;
  }

  Tensor update(int k, const Tensor& v, const Tensor& x) override {
    const auto& s = sigmas();
    Tensor m = ops::axpby(x, 1.f, v, -s[k]);
    Tensor xk = k > 0 ? correct(k, m) : x.clone();
    const int order = std::min({2, steps() - k, k + 1});
    Tensor next = s[k + 1] == 0.f ? m : predict(k, order, xk, m);
    m2_ = m1_;
    m1_ = m;
    last_x_ = xk;
    last_order_ = order;
    return next;
  }
};

// FlowDPMSolverMultistepScheduler, dpmsolver++ 2M midpoint; first and last steps first order.
// σ_0 = 1 makes λ_0 = −∞: then e^{−h} − 1 = −1 on the first step and D1 = 0 on the second.
class DPMpp final : public Sampler {
 public:
  DPMpp(SamplerConfig c, Schedule s) : Sampler(std::move(c), std::move(s)) {}

 private:
  Tensor m1_;  // m_{k−1}

  void clear_history() override { m1_ = Tensor(); }

  Tensor update(int k, const Tensor& v, const Tensor& x) override {
    const auto& s = sigmas();
    const float st = s[k + 1], ss0 = s[k];
    Tensor m = ops::axpby(x, 1.f, v, -ss0);
    Tensor next;
    if (st == 0.f) {
      next = m;  // (0/σ)·x − (1·(−1))·m
    } else {
      const float at = 1.f - st;
      const float lt = lambda(st);
      const bool s0_is_one = ss0 == 1.f;
      const float ls0 = s0_is_one ? 0.f : lambda(ss0);
      const float h = lt - ls0;
      const float em1 = s0_is_one ? -1.f : std::exp(-h) - 1.f;
      const float c = at * em1;
      next = ops::axpby(x, st / ss0, m, -c);
      const bool second_order = k > 0 && k < steps() - 1;
      if (second_order && s[k - 1] != 1.f) {
        const float r0 = (ls0 - lambda(s[k - 1])) / h;
        Tensor d1 = ops::scale(diff(m, m1_), 1.f / r0);
        next = ops::axpby(next, 1.f, d1, -(0.5f * c));
      }
    }
    m1_ = m;
    return next;
  }
};

// LightX2V's WanStepDistillScheduler.step_post: x0 = x − σ_k·v; then x0 + v·σ_{k+1} unless last.
class Euler final : public Sampler {
 public:
  Euler(SamplerConfig c, Schedule s) : Sampler(std::move(c), std::move(s)) {}

 private:
  void clear_history() override {}

  Tensor update(int k, const Tensor& v, const Tensor& x) override {
    const auto& s = sigmas();
    Tensor x0 = ops::axpby(x, 1.f, v, -s[k]);
    if (k == steps() - 1) return x0;
    return ops::axpby(x0, 1.f, v, s[k + 1]);
  }
};

}  // namespace

std::unique_ptr<Sampler> make_sampler(const SamplerConfig& cfg) {
  Schedule s = make_schedule(cfg);
  switch (cfg.solver) {
    case Solver::UniPC: return std::unique_ptr<Sampler>(new UniPC(cfg, std::move(s)));
    case Solver::DPMpp: return std::unique_ptr<Sampler>(new DPMpp(cfg, std::move(s)));
    case Solver::Euler: return std::unique_ptr<Sampler>(new Euler(cfg, std::move(s)));
  }
  fail(ErrorKind::Internal, "make_sampler: unhandled solver");
}

Tensor cfg_combine(const Tensor& v_uncond, const Tensor& v_cond, float guidance) {
  if (v_uncond.shape() != v_cond.shape())
    fail(ErrorKind::InvalidArgument, "cfg: unconditional output ", v_uncond.desc(), " and conditional output ",
         v_cond.desc(), " differ in shape");
  if (!std::isfinite(guidance))
    fail(ErrorKind::InvalidArgument, "cfg: the guidance scale must be a finite number (got ", guidance, ")");
  // v_u + g·(v_c − v_u)
  return ops::axpby(v_uncond, 1.f, diff(v_cond, v_uncond), guidance);
}

}  // namespace x2v::sched
