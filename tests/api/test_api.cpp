// The public API (include/x2v/): the C++ facade and the C API drive the demo model end to end at a
// small size, report progress, return what they wrote, and refuse bad requests with the CLI's
// status codes and messages, writing nothing. The C API's C usage (c_api_smoke.c) is compiled as C
// and run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <thread>

#include "io/image.h"
#include "io/video.h"
#include "testutil.h"
#include "x2v/x2v.h"
#include "x2v/x2v.hpp"

// The C smoke test, compiled again here (as C++) to run it; compiled as C by CSmoke.CompilesAsC99.
#include "c_api_smoke.c"

namespace {
namespace fs = std::filesystem;

// The source tree, from this file's path: tests/api/test_api.cpp.
// The checkout, from the build (__FILE__ is relative to it: see -fmacro-prefix-map in CMakeLists.txt).
fs::path source_root() { return fs::path(X2V_SOURCE_DIR); }

// The demo at a few seconds' size.
x2v::Options small_demo(const std::string& output) {
  x2v::Options o;
  o.demo = true;
  o.width = 64;
  o.height = 48;
  o.frames = 5;
  o.steps = 3;
  o.output = output;
  return o;
}

struct Recorded {
  std::vector<x2v::ProgressInfo::Event> events;
  std::vector<std::string> stages;
  std::vector<int64_t> steps, totals;
};

TEST(Api, Version) {
  EXPECT_STREQ(x2v::version(), X2V_VERSION);
  EXPECT_STREQ(x2v_version(), X2V_VERSION);
  EXPECT_GE(X2V_API_VERSION, 1);
}

TEST(Api, StatusCodesAreTheCliExitCodes) {
  // The CLI's exit code for a refused request is the API's status for it (one mapping).
  const std::string dir = x2v::test::temp_dir();
  std::string out;
  const int rc = x2v::test::run(x2v::test::x2v_binary() + " generate --demo --frames 6 -o " + dir + "/a.mp4", &out);
  EXPECT_EQ(rc, X2V_ERR_INVALID_ARGUMENT) << out;
  const int rc2 = x2v::test::run(x2v::test::x2v_binary() + " generate --model-dir " + dir +
                                     "/missing --prompt x --frames 5 -o " + dir + "/b.mp4", &out);
  EXPECT_EQ(rc2, X2V_ERR_NOT_FOUND) << out;
  EXPECT_STREQ(x2v_status_name(X2V_ERR_NOT_FOUND), "not found");
  EXPECT_STREQ(x2v_status_name(X2V_ERR_CANCELLED), "cancelled");
  EXPECT_STREQ(x2v_status_name(12345), "unknown");
  EXPECT_EQ(static_cast<int>(x2v::Status::OutOfMemory), 7);
}

TEST(Api, CppDemoWritesAVideoAndReportsProgress) {
  const std::string dir = x2v::test::temp_dir();
  const bool mp4 = x2v::io::can_write_video_files();
  // The demo model goes to a temporary folder of its own here, to check that it is removed.
  const std::string tmp = dir + "/tmp";
  fs::create_directories(tmp);
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved = old_tmpdir ? old_tmpdir : "";
  setenv("TMPDIR", tmp.c_str(), 1);
  const std::string out = dir + (mp4 ? "/demo.mp4" : "/frames/");
  x2v::Options o = small_demo(out);
  o.fps = 8;
  o.seed = 7;
  Recorded rec;
  int depth = 0, max_depth = 0;
  x2v::Result r = x2v::generate(o, [&](const x2v::ProgressInfo& p) {
    rec.events.push_back(p.event);
    rec.stages.emplace_back(p.stage);
    rec.steps.push_back(p.step);
    rec.totals.push_back(p.total);
    EXPECT_GE(p.seconds, 0);
    if (p.event == x2v::ProgressInfo::Event::StageBegin) max_depth = std::max(max_depth, ++depth);
    if (p.event == x2v::ProgressInfo::Event::StageEnd) --depth;
  });
  if (old_tmpdir) setenv("TMPDIR", saved.c_str(), 1);
  else unsetenv("TMPDIR");
  EXPECT_EQ(depth, 0);  // every stage begun has ended
  EXPECT_GE(max_depth, 1);

  // The denoising steps arrive in order: 1, 2, 3 of 3.
  std::vector<int64_t> denoise;
  bool began = false;
  for (size_t i = 0; i < rec.events.size(); ++i) {
    if (rec.stages[i] != "denoise") continue;
    if (rec.events[i] == x2v::ProgressInfo::Event::StageBegin) {
      began = true;
      EXPECT_EQ(rec.totals[i], 3);
    }
    if (rec.events[i] == x2v::ProgressInfo::Event::Step) {
      EXPECT_TRUE(began);
      EXPECT_EQ(rec.totals[i], 3);
      denoise.push_back(rec.steps[i]);
    }
  }
  EXPECT_EQ(denoise, (std::vector<int64_t>{1, 2, 3}));
  for (const char* s : {"build demo model", "text encoder", "load DiT", "VAE decode", "write"})
    EXPECT_NE(std::find(rec.stages.begin(), rec.stages.end(), s), rec.stages.end()) << s;

  ASSERT_EQ(r.outputs, std::vector<std::string>{out});
  EXPECT_EQ(r.width, 64);
  EXPECT_EQ(r.height, 48);
  EXPECT_EQ(r.frames, 5);
  EXPECT_EQ(r.fps, 8);
  EXPECT_EQ(r.seed, 7u);
  EXPECT_GT(r.peak_host_bytes, 1 << 20);
  EXPECT_EQ(r.peak_device_bytes, 0);
  EXPECT_TRUE(r.warnings.empty());
  bool timed_denoise = false;
  for (const auto& s : r.stages) {
    EXPECT_GE(s.seconds, 0) << s.name;
    timed_denoise |= s.name == "denoise";
  }
  EXPECT_TRUE(timed_denoise);

  if (mp4) {
    x2v::io::DecodedVideo v = x2v::io::read_video(out);
    EXPECT_EQ(v.info.frames, 5);
    EXPECT_EQ(v.info.width, 64);
    EXPECT_EQ(v.info.height, 48);
    EXPECT_NEAR(v.info.fps(), 8.0, 1e-9);
    EXPECT_EQ(v.frames.shape(), (x2v::Shape{5, 48, 64, 3}));
  } else {
    x2v::Tensor f = x2v::io::read_image(out + "frame_00004.png");
    EXPECT_EQ(f.size(0), 48);
    EXPECT_EQ(f.size(1), 64);
  }
  // The demo's temporary model folder is gone.
  EXPECT_TRUE(fs::is_empty(tmp));
}

TEST(Api, CppRefusesBadOptionsBeforeAnyWork) {
  const std::string dir = x2v::test::temp_dir();
  const std::string out = dir + "/bad.mp4";
  struct Case {
    std::function<void(x2v::Options&)> edit;
    x2v::Status status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {[](x2v::Options& o) { o.frames = 6; }, x2v::Status::InvalidArgument, "4n+1"},
      {[](x2v::Options& o) { o.width = 70; }, x2v::Status::InvalidArgument, "multiple of 16"},
      {[](x2v::Options& o) { o.height.reset(); }, x2v::Status::InvalidArgument, "both width and height"},
      {[](x2v::Options& o) { o.solver = "ddim"; }, x2v::Status::InvalidArgument, "ddim"},
      {[](x2v::Options& o) { o.task = "v2v"; }, x2v::Status::InvalidArgument, "v2v"},
      {[](x2v::Options& o) { o.device = "tpu"; }, x2v::Status::InvalidArgument, "tpu"},
      {[&](x2v::Options& o) { o.output = dir + "/bad.gif"; }, x2v::Status::InvalidArgument, "bad.gif"},
      {[&](x2v::Options& o) { o.output = dir + "/no/such/folder/x.mp4"; }, x2v::Status::Io, "no/such/folder"},
      {[](x2v::Options& o) { o.config_json = "{\"infer_steps\": \"many\"}"; }, x2v::Status::InvalidArgument,
       "infer_steps"},
      {[](x2v::Options& o) { o.config_json = "{not json"; }, x2v::Status::InvalidArgument, "not valid JSON"},
      {[&](x2v::Options& o) {
         o.demo = false;
         o.prompt = "a fox";
         o.model.dir = dir + "/missing-model";
       },
       x2v::Status::NotFound, "missing-model"},
  };
  for (const Case& c : cases) {
    x2v::Options o = small_demo(out);
    c.edit(o);
    int events = 0;
    try {
      x2v::generate(o, [&](const x2v::ProgressInfo&) { ++events; });
      ADD_FAILURE() << "accepted; expected: " << c.says;
    } catch (const x2v::Exception& e) {
      EXPECT_EQ(e.status(), c.status) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << e.what();
    }
    EXPECT_EQ(events, 0) << c.says;  // refused before any stage began
    EXPECT_TRUE(fs::is_empty(dir)) << c.says;
  }
}

TEST(Api, CppCallbackExceptionStopsTheRunAndPassesThrough) {
  const std::string dir = x2v::test::temp_dir();
  struct Stop {
    int64_t at;
  };
  int64_t last_step = 0;
  try {
    x2v::generate(small_demo(dir + "/stopped.mp4"), [&](const x2v::ProgressInfo& p) {
      if (p.stage == "denoise" && p.event == x2v::ProgressInfo::Event::Step) {
        last_step = p.step;
        if (p.step == 2) throw Stop{p.step};
      }
    });
    ADD_FAILURE() << "the callback's exception did not stop generate()";
  } catch (const Stop& s) {
    EXPECT_EQ(s.at, 2);
  }
  EXPECT_EQ(last_step, 2);  // no step after the throw
  EXPECT_TRUE(fs::is_empty(dir));

  // Calling generate() from its own callback is refused (generations run one at a time).
  try {
    x2v::generate(small_demo(dir + "/outer.mp4"),
                  [&](const x2v::ProgressInfo&) { x2v::generate(small_demo(dir + "/inner.mp4")); });
    ADD_FAILURE() << "a nested generate() was accepted";
  } catch (const x2v::Exception& e) {
    EXPECT_EQ(e.status(), x2v::Status::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("own progress callback"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST(Api, ConcurrentCallsRunOneAtATime) {
  const std::string dir = x2v::test::temp_dir();
  // Each run records the interval between its first and last progress event; they must not overlap.
  std::atomic<int> running{0};
  std::atomic<bool> overlapped{false};
  auto job = [&](const std::string& out) {
    x2v::Options o = small_demo(out);
    o.steps = 1;
    bool first = true;
    x2v::generate(o, [&](const x2v::ProgressInfo& p) {
      if (first) {
        first = false;
        if (running.fetch_add(1) != 0) overlapped = true;
      }
      if (p.event == x2v::ProgressInfo::Event::StageEnd && p.stage == "write") running.fetch_sub(1);
    });
  };
  std::thread a(job, dir + "/a.mp4"), b(job, dir + "/b.mp4");
  a.join();
  b.join();
  EXPECT_FALSE(overlapped);
  EXPECT_EQ(running, 0);
  EXPECT_TRUE(fs::exists(dir + "/a.mp4") || !x2v::io::can_write_video_files());
}

TEST(Api, CancelFromAnotherThread) {
  const std::string dir = x2v::test::temp_dir();
  EXPECT_FALSE(x2v::cancel());  // nothing is running
  std::atomic<bool> at_step{false}, cancelled{false};
  std::exception_ptr error;
  int64_t last = 0;
  std::thread worker([&] {
    try {
      x2v::generate(small_demo(dir + "/x.mp4"), [&](const x2v::ProgressInfo& p) {
        if (p.stage != "denoise" || p.event != x2v::ProgressInfo::Event::Step) return;
        last = p.step;
        if (p.step == 1) {  // hold the run here until the other thread has cancelled it
          at_step = true;
          for (int i = 0; i < 6000 && !cancelled; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      });
    } catch (...) {
      error = std::current_exception();
    }
  });
  for (int i = 0; i < 60000 && !at_step; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(at_step);
  EXPECT_TRUE(x2v::cancel());
  cancelled = true;
  worker.join();
  ASSERT_TRUE(error) << "generate() finished despite cancel()";
  try {
    std::rethrow_exception(error);
  } catch (const x2v::Exception& e) {
    EXPECT_EQ(e.status(), x2v::Status::Cancelled);
    EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos) << e.what();
  }
  EXPECT_EQ(last, 1);  // stopped at the next step
  EXPECT_TRUE(fs::is_empty(dir));
  EXPECT_FALSE(x2v::cancel());  // it is over
}

// ------------------------------------------------------------------------------------------- C

TEST(CApi, SettersCheckKeysAndTypesOnly) {
  x2v_options* o = x2v_options_new();
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(x2v_options_set_string(o, "--model-dir", "/m"), X2V_OK);  // the CLI's spelling
  EXPECT_EQ(x2v_options_set_string(o, "negative-prompt", ""), X2V_OK);
  EXPECT_EQ(x2v_options_set_string(o, "size", "832*480"), X2V_OK);
  EXPECT_EQ(x2v_options_set_string(o, "step_list", "1000,750,500,250"), X2V_OK);
  EXPECT_EQ(x2v_options_set_double(o, "frames", 17.0), X2V_OK);  // a whole number
  EXPECT_EQ(x2v_options_set_string(o, "shift", "3.5"), X2V_OK);
  EXPECT_EQ(x2v_options_set_string(o, "enable_cfg", "false"), X2V_OK);
  // A value the pipeline will refuse is still a value of the right type: the setter takes it.
  EXPECT_EQ(x2v_options_set_int(o, "frames", 6), X2V_OK);
  EXPECT_EQ(x2v_options_unset(o, "frames"), X2V_OK);

  struct Bad {
    int rc;
    const char* says;
  };
  const Bad bad[] = {
      {x2v_options_set_string(o, "promt", "x"), "unknown option \"promt\""},
      {x2v_options_set_int(o, "prompt", 3), "takes a string"},
      {x2v_options_set_string(o, "frames", "many"), "takes an integer"},
      {x2v_options_set_double(o, "steps", 2.5), "takes an integer"},
      {x2v_options_set_int(o, "frames", int64_t{1} << 40), "32-bit"},
      {x2v_options_set_string(o, "guide_scale", "5x"), "takes a number"},
      {x2v_options_set_int(o, "demo", 2), "true or false"},
      {x2v_options_set_string(o, "size", "832"), "WIDTHxHEIGHT"},
      {x2v_options_set_string(o, "step_list", "1000,,250"), "comma-separated"},
      {x2v_options_set_string(o, "prompt", nullptr), "NULL"},
      {x2v_options_set_string(nullptr, "prompt", "x"), "NULL"},
      {x2v_options_set_json(o, "[1, 2]"), "must be an object"},
      {x2v_options_set_json(o, "{\"frames\": "), "not valid JSON"},
      {x2v_options_set_json(o, "{\"frames\": [5]}"), "frames"},
      // LightX2V keys are checked by the pipeline's config reader as they are set.
      {x2v_options_set_json(o, "{\"infer_steps\": \"four\"}"), "infer_steps"},
  };
  for (const Bad& b : bad) EXPECT_EQ(b.rc, X2V_ERR_INVALID_ARGUMENT) << b.says;
  // x2v_last_error holds the last failure's message; check each message on its own.
  EXPECT_EQ(x2v_options_set_string(o, "promt", "x"), X2V_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(x2v_last_error()).find("unknown option \"promt\""), std::string::npos) << x2v_last_error();
  for (const auto& [call, says] : std::vector<std::pair<std::function<int()>, std::string>>{
           {[&] { return x2v_options_set_int(o, "prompt", 3); }, "takes a string"},
           {[&] { return x2v_options_set_string(o, "frames", "many"); }, "takes an integer"},
           {[&] { return x2v_options_set_string(o, "size", "832"); }, "WIDTHxHEIGHT"},
           {[&] { return x2v_options_set_json(o, "{\"infer_steps\": \"four\"}"); }, "infer_steps"},
           {[&] { return x2v_options_set_json(o, "{\"model_cls\": \"wan2.2_moe\"}"); }, "wan2.2_moe"},
       }) {
    const int rc = call();
    EXPECT_NE(rc, X2V_OK) << says;
    EXPECT_NE(std::string(x2v_last_error()).find(says), std::string::npos) << x2v_last_error();
  }
  EXPECT_EQ(x2v_options_set_json(o, "{\"model_cls\": \"wan2.2_moe\"}"), X2V_ERR_UNSUPPORTED);
  x2v_options_free(o);
}

TEST(CApi, JsonOptionsWithLightX2VKeys) {
  const std::string dir = x2v::test::temp_dir();
  const std::string frames = dir + "/frames/";
  x2v_options* o = x2v_options_new();
  ASSERT_NE(o, nullptr);
  // API keys and LightX2V keys in one object; "steps" (an API key) wins over "infer_steps".
  const std::string json = R"({"demo": true, "size": "64x48", "target_video_length": 5, "infer_steps": 9,
                               "steps": 2, "sample_guide_scale": 1.0, "seed": 5, "fps": 12,
                               "cpu_offload": true, "output": ")" + frames + R"("})";
  ASSERT_EQ(x2v_options_set_json(o, json.c_str()), X2V_OK) << x2v_last_error();
  struct Count {
    int denoise_steps = 0;
    int64_t total = 0;
  } count;
  auto cb = [](void* ud, int event, const char* stage, int64_t, int64_t total, double) -> int {
    auto* c = static_cast<Count*>(ud);
    if (event == X2V_PROGRESS_STEP && std::string(stage) == "denoise") ++c->denoise_steps, c->total = total;
    return 0;
  };
  x2v_result* r = nullptr;
  char err[256] = "untouched";
  ASSERT_EQ(x2v_generate(o, cb, &count, &r, err, sizeof err), X2V_OK) << err;
  EXPECT_STREQ(err, "");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(count.denoise_steps, 2);
  EXPECT_EQ(count.total, 2);
  EXPECT_EQ(x2v_result_frames(r), 5);
  EXPECT_EQ(x2v_result_fps(r), 12);
  EXPECT_EQ(x2v_result_seed(r), 5u);
  // cpu_offload is a LightX2V runtime key x2v does not apply: a warning, not a failure.
  ASSERT_EQ(x2v_result_warning_count(r), 1u);
  EXPECT_NE(std::string(x2v_result_warning(r, 0)).find("cpu_offload"), std::string::npos) << x2v_result_warning(r, 0);
  EXPECT_EQ(x2v_result_warning(r, 1), nullptr);
  ASSERT_EQ(x2v_result_output_count(r), 1u);
  EXPECT_EQ(std::string(x2v_result_output(r, 0)), frames);
  size_t pngs = 0;
  for (const auto& e : fs::directory_iterator(frames)) pngs += e.path().extension() == ".png";
  EXPECT_EQ(pngs, 5u);
  x2v::Tensor f = x2v::io::read_image(frames + "frame_00000.png");
  EXPECT_EQ(f.size(0), 48);
  EXPECT_EQ(f.size(1), 64);
  x2v_result_free(r);

  // null puts a key back to its default: without an output the request is refused.
  ASSERT_EQ(x2v_options_set_json(o, R"({"output": null})"), X2V_OK);
  EXPECT_EQ(x2v_generate(o, nullptr, nullptr, nullptr, nullptr, 0), X2V_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(x2v_last_error()).find("no output"), std::string::npos) << x2v_last_error();
  x2v_options_free(o);
}

TEST(CApi, RefusedRequestsWriteNothing) {
  const std::string dir = x2v::test::temp_dir();
  x2v_options* o = x2v_options_new();
  ASSERT_NE(o, nullptr);
  ASSERT_EQ(x2v_options_set_string(o, "model_dir", (dir + "/nowhere").c_str()), X2V_OK);
  ASSERT_EQ(x2v_options_set_string(o, "prompt", "a fox"), X2V_OK);
  ASSERT_EQ(x2v_options_set_string(o, "size", "64x48"), X2V_OK);
  ASSERT_EQ(x2v_options_set_int(o, "frames", 5), X2V_OK);
  ASSERT_EQ(x2v_options_set_string(o, "output", (dir + "/x.mp4").c_str()), X2V_OK);
  x2v_result* r = nullptr;
  char err[512];
  EXPECT_EQ(x2v_generate(o, nullptr, nullptr, &r, err, sizeof err), X2V_ERR_NOT_FOUND);
  EXPECT_EQ(r, nullptr);
  EXPECT_NE(std::string(err).find("nowhere"), std::string::npos) << err;
  EXPECT_STREQ(err, x2v_last_error());

  // A short buffer gets the start of the message, NUL-terminated.
  char small[8];
  std::memset(small, 'z', sizeof small);
  EXPECT_EQ(x2v_generate(o, nullptr, nullptr, nullptr, small, sizeof small), X2V_ERR_NOT_FOUND);
  EXPECT_EQ(std::string(small), std::string(x2v_last_error()).substr(0, 7));

  ASSERT_EQ(x2v_options_set_int(o, "fps", 0), X2V_OK);
  EXPECT_EQ(x2v_generate(o, nullptr, nullptr, nullptr, nullptr, 0), X2V_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(x2v_last_error()).find("--fps 0"), std::string::npos) << x2v_last_error();
  EXPECT_EQ(x2v_generate(nullptr, nullptr, nullptr, &r, err, sizeof err), X2V_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("NULL"), std::string::npos) << err;
  EXPECT_TRUE(fs::is_empty(dir));
  x2v_options_free(o);
}

TEST(CApi, CallbackCancels) {
  const std::string dir = x2v::test::temp_dir();
  x2v_options* o = x2v_options_new();
  ASSERT_NE(o, nullptr);
  ASSERT_EQ(x2v_options_set_json(o, R"({"demo": true, "size": "64x48", "frames": 5, "steps": 3})"), X2V_OK);
  ASSERT_EQ(x2v_options_set_string(o, "output", (dir + "/c.mp4").c_str()), X2V_OK);
  int64_t last = 0;
  auto cb = [](void* ud, int event, const char* stage, int64_t step, int64_t, double) -> int {
    if (event != X2V_PROGRESS_STEP || std::string(stage) != "denoise") return 0;
    *static_cast<int64_t*>(ud) = step;
    return step == 1 ? 1 : 0;
  };
  x2v_result* r = nullptr;
  char err[256];
  EXPECT_EQ(x2v_generate(o, cb, &last, &r, err, sizeof err), X2V_ERR_CANCELLED);
  EXPECT_EQ(r, nullptr);
  EXPECT_EQ(last, 1);
  EXPECT_NE(std::string(err).find("cancelled by the progress callback during \"denoise\" at step 1 of 3"),
            std::string::npos)
      << err;
  EXPECT_TRUE(fs::is_empty(dir));

  // Cancelling at a stage's end stops the run at the next event.
  auto at_end = [](void* ud, int event, const char* stage, int64_t, int64_t, double) -> int {
    auto* seen_after = static_cast<int64_t*>(ud);
    if (*seen_after >= 0) ++*seen_after;  // events after the request
    if (event == X2V_PROGRESS_STAGE_END && std::string(stage) == "text encoder") {
      *seen_after = 0;
      return 1;
    }
    return 0;
  };
  int64_t after = -1;
  EXPECT_EQ(x2v_generate(o, at_end, &after, &r, err, sizeof err), X2V_ERR_CANCELLED);
  EXPECT_EQ(after, 0);  // the next event (the DiT's loading) did not reach the callback
  EXPECT_TRUE(fs::is_empty(dir));
  x2v_options_free(o);
}

TEST(CApi, CancelStopsOnlyTheRunningGeneration) {
  const std::string dir = x2v::test::temp_dir();
  EXPECT_EQ(x2v_cancel(), 0);  // nothing is running
  x2v_options* o = x2v_options_new();
  ASSERT_NE(o, nullptr);
  ASSERT_EQ(x2v_options_set_json(o, R"({"demo": true, "size": "64x48", "frames": 5, "steps": 3})"), X2V_OK);
  ASSERT_EQ(x2v_options_set_string(o, "output", (dir + "/c.mp4").c_str()), X2V_OK);
  // x2v_cancel from the callback (as from any other thread): the run stops after that step.
  int result[2] = {-1, 0};  // x2v_cancel's answer, the last denoising step seen
  auto cb = [](void* ud, int event, const char* stage, int64_t step, int64_t, double) -> int {
    int* r = static_cast<int*>(ud);
    if (event != X2V_PROGRESS_STEP || std::string(stage) != "denoise") return 0;
    r[1] = static_cast<int>(step);
    if (step == 1) r[0] = x2v_cancel();
    return 0;
  };
  char err[256];
  EXPECT_EQ(x2v_generate(o, cb, result, nullptr, err, sizeof err), X2V_ERR_CANCELLED);
  EXPECT_EQ(result[0], 1);
  EXPECT_EQ(result[1], 1);
  EXPECT_NE(std::string(err).find("cancelled"), std::string::npos) << err;
  EXPECT_TRUE(fs::is_empty(dir));
  // The next generation is not affected.
  x2v_result* r = nullptr;
  ASSERT_EQ(x2v_generate(o, nullptr, nullptr, &r, err, sizeof err), X2V_OK) << err;
  EXPECT_EQ(x2v_result_output_count(r), 1u);
  EXPECT_TRUE(fs::exists(dir + "/c.mp4") || !x2v::io::can_write_video_files());
  x2v_result_free(r);
  x2v_options_free(o);
}

// ------------------------------------------------------------------------------ C, compiled as C

TEST(CSmoke, CompilesAsC99) {
  if (x2v::test::run("command -v cc >/dev/null 2>&1") != 0) GTEST_SKIP() << "no C compiler (cc) on PATH";
  const fs::path root = source_root();
  const std::string obj = x2v::test::temp_dir() + "/c_api_smoke.o";
  std::string out;
  const int rc = x2v::test::run("cc -x c -std=c99 -pedantic -Wall -Wextra -Werror -c -I " + (root / "include").string() +
                                    " " + (root / "tests/api/c_api_smoke.c").string() + " -o " + obj,
                                &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(fs::exists(obj));
}

TEST(CSmoke, Runs) {
  const std::string dir = x2v::test::temp_dir();
  char msg[512] = "";
  EXPECT_EQ(x2v_c_smoke_generate((dir + "/frames/").c_str(), msg, sizeof msg), 0) << msg;
  EXPECT_EQ(x2v_c_smoke_refused((dir + "/refused.mp4").c_str(), msg, sizeof msg), 0) << msg;
  EXPECT_TRUE(fs::exists(dir + "/frames/frame_00004.png"));
  EXPECT_FALSE(fs::exists(dir + "/refused.mp4"));
}

}  // namespace
