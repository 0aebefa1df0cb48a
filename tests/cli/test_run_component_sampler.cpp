// `x2v run-component sampler` on the Wan2.1 sampler fixtures: the written timesteps, sigmas and
// per-step states match the reference; bad inputs and options fail with a clear message and
// write nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "testutil.h"

namespace x2v {
namespace {

struct Case {
  std::string key, solver, step_list;
  int steps;
  double shift;
};

std::vector<Case> fixture_cases() {
  std::ifstream f(test::fixture("wan21/meta.json"));
  nlohmann::json meta = nlohmann::json::parse(f).at("sched");
  std::vector<Case> cases;
  for (const auto& [key, m] : meta.items()) {
    Case c{key, m.at("solver").get<std::string>(), "", m.at("steps").get<int>(), m.at("shift").get<double>()};
    if (m.contains("step_list"))
      for (int t : m.at("step_list").get<std::vector<int>>())
        c.step_list += (c.step_list.empty() ? "" : ",") + std::to_string(t);
    cases.push_back(c);
  }
  return cases;
}

// The inputs file the CLI takes: x_init and v0..v{N-1} of one fixture case, minus `skip`.
std::string write_inputs(const io::SafeTensors& fx, const Case& c, const std::string& dir,
                         const std::string& skip = "") {
  std::vector<std::pair<std::string, Tensor>> t;
  t.emplace_back("x_init", fx.get(c.key + ".x_init"));
  for (int i = 0; i < c.steps; ++i) {
    const std::string n = "v" + std::to_string(i);
    if (n != skip) t.emplace_back(n, fx.get(c.key + "." + n));
  }
  std::string path = dir + "/in.safetensors";
  io::write_safetensors(path, t);
  return path;
}

std::string command(const Case& c, const std::string& in, const std::string& out) {
  std::string cmd = test::x2v_binary() + " run-component sampler --solver '" + c.solver + "' --steps " +
                    std::to_string(c.steps) + " --shift " + std::to_string(c.shift) + " --inputs " + in +
                    " --output " + out;
  if (!c.step_list.empty()) cmd += " --step-list " + c.step_list;
  return cmd;
}

TEST(RunComponentSampler, MatchesFixtures) {
  io::SafeTensors fx = io::SafeTensors::open(test::fixture("wan21/sched.io.safetensors"));
  std::vector<Case> cases = fixture_cases();
  ASSERT_GE(cases.size(), 5u);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    const std::string dir = test::temp_dir();
    const std::string in = write_inputs(fx, c, dir), out = dir + "/out.safetensors";
    std::string log;
    ASSERT_EQ(test::run(command(c, in, out), &log), 0) << log;
    io::SafeTensors got = io::SafeTensors::open(out);
    ASSERT_EQ(got.tensors().size(), static_cast<size_t>(2 + c.steps));
    for (const auto& t : got.tensors()) EXPECT_EQ(t.dtype, DType::F32) << t.name;

    std::vector<float> ts = got.get("timesteps").to_vector(), ts_ref = fx.get(c.key + ".timesteps").to_vector();
    EXPECT_EQ(ts, ts_ref);
    std::vector<float> sg = got.get("sigmas").to_vector(), sg_ref = fx.get(c.key + ".sigmas").to_vector();
    ASSERT_EQ(sg.size(), static_cast<size_t>(c.steps + 1));
    EXPECT_EQ(sg.back(), 0.f);
    // The euler fixture stores only the N picked sigmas.
    ASSERT_LE(sg_ref.size(), sg.size());
    EXPECT_EQ(std::vector<float>(sg.begin(), sg.begin() + sg_ref.size()), sg_ref);

    for (int i = 0; i < c.steps; ++i) {
      const std::string n = "x" + std::to_string(i);
      test::expect_close(got.get(n), fx.get(c.key + "." + n), 1e-4, c.key + " " + n);
    }
  }
}

TEST(RunComponentSampler, MissingModelOutputFails) {
  io::SafeTensors fx = io::SafeTensors::open(test::fixture("wan21/sched.io.safetensors"));
  Case c{"unipc.s6.shift3.0", "unipc", "", 6, 3.0};
  const std::string dir = test::temp_dir();
  const std::string in = write_inputs(fx, c, dir, "v3"), out = dir + "/out.safetensors";
  std::string log;
  EXPECT_NE(test::run(command(c, in, out), &log), 0);
  EXPECT_NE(log.find("\"v3\""), std::string::npos) << log;
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(RunComponentSampler, BadOptionsFail) {
  io::SafeTensors fx = io::SafeTensors::open(test::fixture("wan21/sched.io.safetensors"));
  Case good{"euler.s4.shift5.0", "euler", "1000,750,500,250", 4, 5.0};
  const std::string dir = test::temp_dir();
  const std::string in = write_inputs(fx, good, dir), out = dir + "/out.safetensors";
  struct Bad {
    Case c;
    std::string needle;
  };
  const std::vector<Bad> bad = {
      {{good.key, "ddim", "", 4, 5.0}, "unknown solver \"ddim\""},
      {{good.key, "euler", "1000,750,x,250", 4, 5.0}, "\"x\" is not an integer"},
      {{good.key, "euler", "1000,500,750,250", 4, 5.0}, "strictly decreasing"},
      {{good.key, "euler", "1000,750,500", 4, 5.0}, "one entry per step"},
      {{good.key, "unipc", "1000,750,500,250", 4, 5.0}, "only used by the euler solver"},
      {{good.key, "unipc", "", 4, 0.0}, "shift must be a positive number"},
      {{good.key, "dpm++", "", 0, 5.0}, "at least 1"},
      {{good.key, "dpm++", "", 5, 5.0}, "\"v4\""},  // the file holds 4 model outputs
  };
  for (const Bad& b : bad) {
    std::string log;
    const std::string cmd = command(b.c, in, out);
    EXPECT_NE(test::run(cmd, &log), 0) << cmd;
    EXPECT_NE(log.find(b.needle), std::string::npos) << cmd << "\n" << log;
    EXPECT_FALSE(std::filesystem::exists(out)) << cmd;
  }
  // Sanity: the same file and options minus the fault succeed.
  std::string log;
  EXPECT_EQ(test::run(command(good, in, out), &log), 0) << log;
  EXPECT_TRUE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace x2v
