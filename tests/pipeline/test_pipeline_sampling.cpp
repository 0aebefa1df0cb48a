// The pipeline's sampling policy, checked against the same loop written out here from the model
// and sampler APIs: distilled models take one DiT pass per step-list entry (no guidance), a guide
// scale of 1 skips the unconditional pass, and otherwise guidance is two passes combined as
// v_u + g·(v_c − v_u). Also what the pipeline reports to a Progress.
#include <atomic>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/progress.h"
#include "io/safetensors.h"
#include "models/wan/dit.h"
#include "models/wan/vae.h"
#include "pipeline/pipeline.h"
#include "sched/sampler.h"
#include "testutil.h"

namespace x2v::pipeline {
namespace {
namespace wan = models::wan;

std::string fx(const std::string& f) { return test::fixture("wan21/" + f); }

struct Fixture {
  std::string dir = test::temp_dir();
  std::string cfg = dir + "/config.json";
  Fixture() {
    std::ifstream in(fx("meta.json"));
    std::ofstream(cfg) << nlohmann::json::parse(in).at("dit_t2v").at("config").dump();
  }
  GenerateRequest request() const {
    GenerateRequest r;
    r.model.dit = fx("dit_t2v.safetensors");
    r.model.dit_config = cfg;
    r.model.vae = fx("vae.safetensors");
    r.text_embeddings = fx("e2e_t2v.io.safetensors");
    r.noise = fx("e2e_t2v.io.safetensors");
    r.width = 48;
    r.height = 32;
    r.frames = 9;
    r.output_tensor = dir + "/out.safetensors";
    return r;
  }
};

// The denoising loop written out: `passes` counts DiT calls.
Tensor reference_loop(const GenerateSettings& s, const std::string& cfg, int* passes) {
  auto io = io::SafeTensors::open(fx("e2e_t2v.io.safetensors"));
  wan::DitModel dit = wan::DitModel::load(fx("dit_t2v.safetensors"), cfg);
  const Tensor context = io.get("context").to(DType::F32).clone();
  const Tensor context_null = io.get("context_null").to(DType::F32).clone();
  auto sampler = sched::make_sampler(s.sampler);
  Tensor x = io.get("noise").to(DType::F32).clone();
  const wan::DitContext c = dit.embed_context(context), u = dit.embed_context(context_null);
  *passes = 0;
  while (!sampler->done()) {
    const Tensor t = Tensor::from_f32({sampler->timestep()}, {1});
    Tensor v = dit.forward(x, Tensor(), t, c);
    ++*passes;
    if (s.cfg) {
      Tensor vu = dit.forward(x, Tensor(), t, u);
      ++*passes;
      v = sched::cfg_combine(vu, v, static_cast<float>(s.guide_scale));
    }
    x = sampler->step(v, x);
  }
  wan::WanVAE vae = wan::WanVAE::load(*io::open_weights(fx("vae.safetensors")),
                                      wan::resolve_vae_config({}, *io::open_weights(fx("vae.safetensors"))));
  return vae.decode(x);
}

TEST(PipelineSampling, DistilledStepListOnePassPerStep) {
  Fixture f;
  GenerateRequest r = f.request();
  r.step_list = {1000, 750, 500, 250};
  GenerateSettings s = resolve(r);
  ASSERT_EQ(s.sampler.solver, sched::Solver::Euler);
  ASSERT_FALSE(s.cfg);
  GenerateResult res = generate(s);
  int passes = 0;
  Tensor ref = reference_loop(s, f.cfg, &passes);
  EXPECT_EQ(passes, 4);
  test::expect_close(res.video, ref, 1e-6, "distilled video");
  // The distilled schedule feeds float timesteps (937.5, 833.33.., 625), not truncated ones.
  auto sampler = sched::make_sampler(s.sampler);
  EXPECT_EQ(sampler->timesteps()[1], 937.5f);
}

TEST(PipelineSampling, GuideScaleOneIsOnePass) {
  Fixture f;
  GenerateRequest r = f.request();
  r.steps = 3;
  r.guide_scale = 1.0;
  GenerateSettings s = resolve(r);
  ASSERT_FALSE(s.cfg);
  GenerateResult res = generate(s);
  int passes = 0;
  Tensor ref = reference_loop(s, f.cfg, &passes);
  EXPECT_EQ(passes, 3);
  test::expect_close(res.video, ref, 1e-6, "guide 1 video");
}

TEST(PipelineSampling, GuidanceIsTwoPassesAndProgressIsReported) {
  Fixture f;
  GenerateRequest r = f.request();
  r.steps = 3;
  r.guide_scale = 3.0;
  r.solver = sched::Solver::DPMpp;
  GenerateSettings s = resolve(r);
  ASSERT_TRUE(s.cfg);
  std::vector<ProgressEvent> events;
  CallbackProgress p([&](const ProgressEvent& e) { events.push_back(e); });
  GenerateResult res = generate(s, &p);
  int passes = 0;
  Tensor ref = reference_loop(s, f.cfg, &passes);
  EXPECT_EQ(passes, 6);
  test::expect_close(res.video, ref, 1e-6, "cfg video");

  // Stages in order, each ended; the denoising stage reports every step.
  std::vector<std::string> begun;
  int ended = 0;
  std::vector<int64_t> denoise_steps;
  for (const auto& e : events) {
    if (e.kind == ProgressEvent::StageBegin) begun.push_back(e.stage);
    if (e.kind == ProgressEvent::StageEnd) ++ended;
    if (e.kind == ProgressEvent::Step && e.stage == "denoise") {
      denoise_steps.push_back(e.done);
      EXPECT_EQ(e.total, 3);
    }
  }
  EXPECT_EQ(begun, (std::vector<std::string>{"text embeddings", "load DiT", "denoise", "VAE decode", "write"}));
  EXPECT_EQ(ended, static_cast<int>(begun.size()));
  EXPECT_EQ(denoise_steps, (std::vector<int64_t>{1, 2, 3}));
  ASSERT_EQ(res.stages.size(), begun.size());
  EXPECT_EQ(res.written, std::vector<std::string>{s.output_tensor});
  EXPECT_GT(res.peak_host_bytes, 0u);
}

// Cancelling stops the run at the next step or VAE chunk with Cancelled, and nothing is written.
TEST(PipelineSampling, CancelLeavesNoOutput) {
  for (const char* when : {"denoise", "VAE decode"}) {
    Fixture f;
    GenerateRequest r = f.request();
    r.steps = 3;
    r.output = f.dir + "/video.mp4";
    GenerateSettings s = resolve(r);
    std::atomic<bool> cancel{false};
    int steps_after = 0;
    CallbackProgress p([&](const ProgressEvent& e) {
      if (cancel && e.kind == ProgressEvent::Step) ++steps_after;
      if (e.stage == when && e.kind == ProgressEvent::Step && e.done == 1) cancel = true;
    });
    EXPECT_THROW(generate(s, &p, &cancel), Cancelled) << when;
    EXPECT_EQ(steps_after, 0) << when;  // no step ran after the one that set the flag
    std::vector<std::string> left;
    for (const auto& e : std::filesystem::directory_iterator(f.dir)) left.push_back(e.path().filename().string());
    EXPECT_EQ(left, std::vector<std::string>{"config.json"}) << when;
  }
}

}  // namespace
}  // namespace x2v::pipeline
