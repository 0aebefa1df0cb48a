// The samplers against the official Wan2.1 solvers and LightX2V's step-distill scheduler
// (../shared/fixtures/wan21/sched.io.safetensors), the reference timestep tables of
// docs/wan-spec.md §7.7, and the configuration checks.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "io/safetensors.h"
#include "sched/sampler.h"
#include "testutil.h"

namespace x2v {
namespace {

using sched::SamplerConfig;
using sched::Solver;

nlohmann::json sched_meta() {
  std::ifstream f(test::fixture("wan21/meta.json"));
  EXPECT_TRUE(f.good()) << "cannot open " << test::fixture("wan21/meta.json");
  return nlohmann::json::parse(f).at("sched");
}

SamplerConfig config_from_meta(const nlohmann::json& m) {
  SamplerConfig c;
  c.solver = sched::parse_solver(m.at("solver").get<std::string>());
  c.steps = m.at("steps").get<int>();
  c.shift = m.at("shift").get<double>();
  if (m.contains("step_list")) c.step_list = m.at("step_list").get<std::vector<int>>();
  return c;
}

std::vector<float> ints(std::initializer_list<int> l) { return std::vector<float>(l.begin(), l.end()); }

// Every tensor of the fixture file: schedules exact, each state after a step within 1e-4 relative L2
// (the solvers round like the reference, so the observed error is at float32 rounding level).
TEST(Samplers, MatchReferenceFixtures) {
  io::SafeTensors st = io::SafeTensors::open(test::fixture("wan21/sched.io.safetensors"));
  nlohmann::json meta = sched_meta();
  std::set<std::string> used;
  auto get = [&](const std::string& name) {
    used.insert(name);
    return st.get(name);
  };
  ASSERT_GE(meta.size(), 5u);
  for (const auto& [key, m] : meta.items()) {
    SCOPED_TRACE(key);
    SamplerConfig cfg = config_from_meta(m);
    auto s = sched::make_sampler(cfg);
    const int n = cfg.steps;

    // timesteps: what the DiT receives, bit-exact.
    std::vector<float> t_ref = get(key + ".timesteps").to_vector();
    ASSERT_EQ(t_ref.size(), static_cast<size_t>(n));
    ASSERT_EQ(s->timesteps().size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_EQ(s->timesteps()[i], t_ref[i]) << "timestep " << i;

    // sigmas: N + 1 values ending in 0 here; the fixture stores N + 1 for unipc/dpm++ and the N
    // picked ones for euler (whose last step goes to 0 implicitly).
    std::vector<float> s_ref = get(key + ".sigmas").to_vector();
    ASSERT_EQ(s->sigmas().size(), static_cast<size_t>(n + 1));
    EXPECT_EQ(s->sigmas()[n], 0.f);
    ASSERT_TRUE(s_ref.size() == static_cast<size_t>(n) || s_ref.size() == static_cast<size_t>(n + 1));
    for (size_t i = 0; i < s_ref.size(); ++i) EXPECT_EQ(s->sigmas()[i], s_ref[i]) << "sigma " << i;

    Tensor x = get(key + ".x_init");
    ASSERT_EQ(x.shape(), m.at("shape").get<Shape>());
    double worst = 0;
    for (int i = 0; i < n; ++i) {
      ASSERT_FALSE(s->done());
      EXPECT_EQ(s->timestep(), t_ref[i]);
      Tensor v = get(key + ".v" + std::to_string(i));
      Tensor ref = get(key + ".x" + std::to_string(i));
      x = s->step(v, x);
      ASSERT_EQ(s->step_index(), i + 1);
      test::expect_close(x, ref, 1e-4, key + " x" + std::to_string(i));
      worst = std::max(worst, test::rel_l2(x.to_vector(), ref.to_vector()));
    }
    EXPECT_TRUE(s->done());
    // Observed: float32 rounding level. A wrong coefficient or order shows up far above this.
    EXPECT_LE(worst, 2e-6) << key;
    std::printf("%-20s worst relative L2 over %d steps: %.3g\n", key.c_str(), n, worst);
  }
  for (const auto& t : st.tensors()) EXPECT_TRUE(used.count(t.name)) << "fixture tensor not checked: " << t.name;
}

// The last step of unipc and dpm++ lands on σ = 0 and returns the x0 prediction x − σ·v exactly;
// euler's last step is x − σ·v by definition.
TEST(Samplers, LastStepReturnsX0Prediction) {
  for (Solver solver : {Solver::UniPC, Solver::DPMpp, Solver::Euler}) {
    SamplerConfig c;
    c.solver = solver;
    c.steps = solver == Solver::Euler ? 4 : 5;
    c.shift = 5;
    auto s = sched::make_sampler(c);
    Tensor x = test::random_tensor({2, 3, 4}, 1);
    for (int i = 0; i < c.steps - 1; ++i) x = s->step(test::random_tensor({2, 3, 4}, 10 + i), x);
    Tensor v = test::random_tensor({2, 3, 4}, 99);
    const float sigma = s->sigmas()[c.steps - 1];
    std::vector<float> xv = x.to_vector(), vv = v.to_vector();
    Tensor out = s->step(v, x);
    std::vector<float> ov = out.to_vector();
    for (size_t i = 0; i < xv.size(); ++i) EXPECT_EQ(ov[i], xv[i] - sigma * vv[i]) << sched::solver_name(solver);
  }
}

std::vector<float> unipc_timesteps(int n, double shift) {
  SamplerConfig c;
  c.solver = Solver::UniPC;
  c.steps = n;
  c.shift = shift;
  return sched::make_schedule(c).timesteps;
}

// docs/wan-spec.md §7.7.
TEST(Samplers, ReferenceTimestepTables) {
  EXPECT_EQ(unipc_timesteps(50, 5),
            ints({999, 995, 991, 987, 982, 978, 973, 968, 963, 957, 952, 946, 940, 934, 927, 920, 913,
                  906, 898, 890, 882, 873, 863, 854, 843, 833, 821, 809, 796, 783, 768, 753, 737, 720,
                  701, 681, 660, 636, 611, 584, 555, 522, 487, 448, 405, 356, 302, 241, 172, 92}));
  EXPECT_EQ(unipc_timesteps(40, 5),
            ints({999, 994, 989, 983, 978, 972, 965, 959, 952, 944, 937, 929, 920, 911, 902, 892, 882, 870, 859, 846,
                  833, 818, 803, 786, 768, 749, 728, 706, 681, 654, 624, 591, 555, 514, 468, 416, 356, 288, 208, 113}));
  EXPECT_EQ(unipc_timesteps(40, 3),
            ints({999, 991, 982, 973, 963, 954, 944, 933, 922, 911, 899, 887, 874, 861, 847, 832, 817, 801, 785, 767,
                  749, 730, 710, 688, 666, 642, 617, 590, 562, 531, 499, 465, 428, 388, 345, 299, 249, 195, 136, 71}));
  EXPECT_EQ(unipc_timesteps(40, 12),
            ints({999, 997, 995, 993, 990, 988, 985, 982, 979, 976, 972, 969, 965, 961, 956, 952, 947, 941, 936, 929,
                  922, 915, 907, 898, 888, 877, 865, 852, 837, 819, 799, 776, 749, 717, 678, 631, 571, 492, 386, 235}));
  EXPECT_EQ(unipc_timesteps(50, 16),
            ints({999, 998, 997, 995, 994, 993, 991, 989, 988, 986, 984, 982, 980, 978, 976, 973, 971,
                  968, 965, 963, 959, 956, 953, 949, 945, 941, 936, 931, 926, 920, 914, 907, 899, 891,
                  882, 872, 861, 848, 834, 818, 799, 778, 752, 722, 685, 639, 581, 504, 399, 245}));
  SamplerConfig u;
  u.solver = Solver::UniPC;
  u.steps = 50;
  u.shift = 5;
  EXPECT_NEAR(sched::make_schedule(u).sigmas[0], 0.99979985, 5e-8);

  SamplerConfig d;
  d.solver = Solver::DPMpp;
  d.steps = 50;
  d.shift = 5;
  sched::Schedule ds = sched::make_schedule(d);
  EXPECT_EQ(std::vector<float>(ds.timesteps.begin(), ds.timesteps.begin() + 8),
            ints({1000, 995, 991, 987, 982, 978, 973, 968}));
  EXPECT_EQ(ds.sigmas[0], 1.f);  // σ_0 = 1 exactly
  EXPECT_EQ(ds.sigmas.back(), 0.f);

  // LightX2V 4-step distill, shift 5: float timesteps, not truncated.
  SamplerConfig e;
  e.solver = Solver::Euler;
  e.steps = 4;
  e.shift = 5;
  sched::Schedule es = sched::make_schedule(e);
  EXPECT_EQ(es.sigmas, (std::vector<float>{1.f, 0.9375f, 5.f / 6.f, 0.625f, 0.f}));
  EXPECT_EQ(es.timesteps, (std::vector<float>{1000.f, 937.5f, 5000.f / 6.f, 625.f}));
}

// Every schedule of every solver over the accepted step range is strictly decreasing from below 1
// (or exactly 1) down to 0, and unipc/dpm++ timesteps are integers.
TEST(Samplers, SchedulesAreWellFormed) {
  for (Solver solver : {Solver::UniPC, Solver::DPMpp}) {
    for (int n : {1, 2, 3, 7, 40, 50, 100, 250}) {
      for (double shift : {1.0, 3.0, 5.0, 8.0, 12.0, 16.0}) {
        SamplerConfig c;
        c.solver = solver;
        c.steps = n;
        c.shift = shift;
        sched::Schedule s;
        try {
          s = sched::make_schedule(c);
        } catch (const Error& e) {
          // Only the reference's own dead end (a repeated first timestep) may be refused here.
          EXPECT_NE(std::string(e.what()).find("cannot run"), std::string::npos) << e.what();
          continue;
        }
        ASSERT_EQ(s.timesteps.size(), static_cast<size_t>(n));
        ASSERT_EQ(s.sigmas.size(), static_cast<size_t>(n + 1));
        EXPECT_LE(s.sigmas[0], 1.f);
        EXPECT_EQ(s.sigmas[n], 0.f);
        for (int k = 0; k < n; ++k) {
          EXPECT_GT(s.sigmas[k], s.sigmas[k + 1]);
          EXPECT_EQ(s.timesteps[k], std::trunc(s.timesteps[k]));
          EXPECT_NEAR(s.timesteps[k], s.sigmas[k] * 1000.0, 1.0 + 1e-3);
          if (k > 0) {
            EXPECT_LE(s.timesteps[k], s.timesteps[k - 1]);
          }
        }
      }
    }
  }
}

TEST(Samplers, EulerCustomStepList) {
  SamplerConfig c;
  c.solver = Solver::Euler;
  c.step_list = {1000, 757, 522};
  c.steps = 3;
  c.shift = 8;
  sched::Schedule s = sched::make_schedule(c);
  ASSERT_EQ(s.sigmas.size(), 4u);
  for (int k = 0; k < 3; ++k) {
    // σ' of the grid point 1 − (1000 − t)/1000, computed here in double.
    const double g = 1.0 - (1000 - c.step_list[k]) / 1000.0;
    const double want = 8 * g / (1 + 7 * g);
    EXPECT_NEAR(s.sigmas[k], want, 2e-7);
    EXPECT_EQ(s.timesteps[k], s.sigmas[k] * 1000.f);
  }
}

void expect_invalid(const SamplerConfig& c, const std::string& needle) {
  try {
    sched::make_sampler(c);
    ADD_FAILURE() << "accepted a bad config; expected an error mentioning \"" << needle << "\"";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Samplers, ConfigErrors) {
  SamplerConfig u;
  u.solver = Solver::UniPC;
  u.steps = 0;
  expect_invalid(u, "at least 1");
  u.steps = -3;
  expect_invalid(u, "at least 1");
  u.steps = 1001;
  expect_invalid(u, "at most 1000");
  u.steps = 50;
  for (double bad : {0.0, -2.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    u.shift = bad;
    expect_invalid(u, "shift must be a positive number");
  }
  u.shift = 5;
  u.step_list = {1000, 500};
  expect_invalid(u, "only used by the euler solver");
  u.step_list.clear();
  // 500 steps at shift 5: the first two truncated timesteps are both 999.
  u.steps = 500;
  expect_invalid(u, "cannot run");

  SamplerConfig e;
  e.solver = Solver::Euler;
  e.shift = 5;
  e.steps = 4;
  e.step_list = {1000, 750, 750, 250};
  expect_invalid(e, "strictly decreasing");
  e.step_list = {250, 500, 750, 1000};
  expect_invalid(e, "strictly decreasing");
  e.step_list = {1000, 750, 500, 0};
  expect_invalid(e, "1..1000");
  e.step_list = {1001, 750, 500, 250};
  expect_invalid(e, "1..1000");
  e.step_list = {1000, 500};
  expect_invalid(e, "one entry per step");
  e.step_list.clear();
  e.steps = 8;  // default list has 4
  expect_invalid(e, "one entry per step");

  for (const char* bad : {"ddim", "UniPC", "", "dpm"}) {
    try {
      sched::parse_solver(bad);
      ADD_FAILURE() << "accepted solver name \"" << bad << "\"";
    } catch (const Error& err) {
      EXPECT_EQ(err.kind(), ErrorKind::InvalidArgument);
      EXPECT_NE(std::string(err.what()).find("unipc"), std::string::npos) << err.what();
    }
  }
  EXPECT_EQ(sched::parse_solver("dpm++"), Solver::DPMpp);
}

TEST(Samplers, StepErrorsAndReset) {
  SamplerConfig c;
  c.solver = Solver::UniPC;
  c.steps = 3;
  c.shift = 5;
  auto s = sched::make_sampler(c);
  Tensor x = test::random_tensor({4, 5}, 3);
  EXPECT_THROW(s->step(test::random_tensor({4, 6}, 4), x), Error);  // shape mismatch
  EXPECT_EQ(s->step_index(), 0);
  std::vector<Tensor> vs;
  for (int i = 0; i < 3; ++i) vs.push_back(test::random_tensor({4, 5}, 20 + i));
  Tensor a = s->step(vs[0], x);
  EXPECT_THROW(s->step(test::random_tensor({5, 4}, 5), test::random_tensor({5, 4}, 6)), Error);  // new shape
  a = s->step(vs[1], a);
  a = s->step(vs[2], a);
  EXPECT_TRUE(s->done());
  EXPECT_THROW(s->step(vs[0], a), Error);
  EXPECT_THROW(s->timestep(), Error);
  // After reset the same inputs give the same result: no history leaks across runs.
  s->reset();
  Tensor b = x;
  for (int i = 0; i < 3; ++i) b = s->step(vs[i], b);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  // A state in another float dtype is converted: bf16 inputs give the f32 result of their values.
  s->reset();
  Tensor xb = x.to(DType::BF16), ab = xb.to(DType::F32);
  Tensor vb = vs[0].to(DType::BF16);
  Tensor r1 = s->step(vb, xb);
  s->reset();
  Tensor r2 = s->step(vb.to(DType::F32), ab);
  EXPECT_EQ(r1.dtype(), DType::F32);
  EXPECT_EQ(r1.to_vector(), r2.to_vector());
  EXPECT_THROW(s->step(Tensor::zeros({4, 5}, DType::I32), Tensor::zeros({4, 5}, DType::I32)), Error);
}

TEST(Samplers, ClassifierFreeGuidance) {
  Tensor u = test::random_tensor({3, 7}, 7), c = test::random_tensor({3, 7}, 8);
  const float g = 5.f;
  Tensor v = sched::cfg_combine(u, c, g);
  std::vector<float> uv = u.to_vector(), cv = c.to_vector(), got = v.to_vector();
  ASSERT_EQ(got.size(), uv.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const float d = cv[i] - uv[i];
    const float gd = g * d;
    EXPECT_EQ(got[i], uv[i] + gd) << i;
  }
  EXPECT_THROW(sched::cfg_combine(u, test::random_tensor({7, 3}, 9), g), Error);
}

}  // namespace
}  // namespace x2v
