// The C++ API (include/x2v/x2v.hpp) on top of the pipeline: Options become a GenerateRequest the
// way `x2v generate` builds one (LightX2V config first, explicit options over it, the demo's
// defaults from the pipeline), resolve() and check_outputs() check it, pipeline::generate() runs it.
#include <stdlib.h>

#include <atomic>
#include <exception>
#include <filesystem>
#include <mutex>
#include <new>

#include <nlohmann/json.hpp>

#include "api/status.h"
#include "core/error.h"
#include "core/progress.h"
#include "pipeline/config_file.h"
#include "pipeline/demo.h"
#include "pipeline/pipeline.h"
#include "pipeline/request.h"
#include "x2v/x2v.hpp"

namespace x2v {
namespace {
namespace fs = std::filesystem;

static_assert(static_cast<int>(Status::InvalidArgument) == X2V_ERR_INVALID_ARGUMENT);

Device parse_device(const std::string& d) {
  if (d.empty() || d == "cpu") return Device::CPU;
  if (d == "cuda") return Device::CUDA;
  fail(ErrorKind::InvalidArgument, "device \"", d, "\": use cpu or cuda");
}

pipeline::GenerateRequest to_request(const Options& o, std::vector<std::string>& warnings) {
  pipeline::GenerateRequest r;
  if (!o.config_file.empty()) {
    auto w = pipeline::apply_config_file(o.config_file, r);
    warnings.insert(warnings.end(), w.begin(), w.end());
  }
  if (!o.config_json.empty()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(o.config_json);
    } catch (const nlohmann::json::exception& e) {
      fail(ErrorKind::InvalidArgument, "config_json is not valid JSON (", e.what(), ")");
    }
    if (!j.is_object()) fail(ErrorKind::InvalidArgument, "config_json must be a JSON object, got ", j.type_name());
    auto w = pipeline::apply_config_json(j, "config_json", r);
    warnings.insert(warnings.end(), w.begin(), w.end());
  }
  // Explicit options win over the configuration, as on the command line.
  if (!o.task.empty()) r.task = pipeline::parse_task(o.task);
  r.model.model_dir = o.model.dir;
  r.model.dit = o.model.dit;
  r.model.dit_config = o.model.dit_config;
  r.model.t5 = o.model.t5;
  r.model.tokenizer = o.model.tokenizer;
  r.model.clip = o.model.clip;
  r.model.clip_config = o.model.clip_config;
  r.model.vae = o.model.vae;
  if (!o.prompt.empty()) r.prompt = o.prompt;
  if (o.negative_prompt) r.negative_prompt = o.negative_prompt;
  if (!o.image.empty()) r.image = o.image;
  if (o.width) r.width = o.width;
  if (o.height) r.height = o.height;
  if (o.max_area) r.max_area = o.max_area;
  if (o.frames) r.frames = o.frames;
  if (o.steps) r.steps = o.steps;
  if (o.shift) r.shift = o.shift;
  if (o.guide_scale) r.guide_scale = o.guide_scale;
  if (o.enable_cfg) r.enable_cfg = o.enable_cfg;
  if (!o.solver.empty()) r.solver = sched::parse_solver(o.solver);
  if (!o.step_list.empty()) r.step_list = o.step_list;
  if (o.seed) r.seed = o.seed;
  if (o.fps) r.fps = o.fps;
  r.text_embeddings = o.text_embeddings;
  r.clip_embeddings = o.clip_embeddings;
  r.noise = o.noise;
  r.output = o.output;
  r.output_tensor = o.output_tensor;
  r.device = parse_device(o.device);

  if (o.demo) pipeline::apply_demo_defaults(r);  // as `x2v generate --demo`
  return r;
}

// Thrown through the pipeline when the user's callback threw; the user's exception is rethrown
// once the pipeline has unwound. Deliberately not a std::exception, so nothing on the way takes
// it for an engine error.
struct CallbackThrew {};

class CallbackAdapter final : public ProgressTracker {
 public:
  explicit CallbackAdapter(const ProgressCallback& fn) : fn_(fn) {}
  std::exception_ptr error;  // the callback's exception
  bool pending = false;      // thrown at a StageEnd: stop at the next event

 protected:
  void on_event(const ProgressEvent& e) override {
    if (pending && e.kind != ProgressEvent::StageEnd) {
      pending = false;
      throw CallbackThrew{};
    }
    ProgressInfo p;
    p.event = e.kind == ProgressEvent::StageBegin ? ProgressInfo::Event::StageBegin
              : e.kind == ProgressEvent::Step     ? ProgressInfo::Event::Step
                                                  : ProgressInfo::Event::StageEnd;
    p.stage = e.stage;
    p.depth = e.depth;
    p.step = e.done;
    p.total = e.total;
    p.seconds = e.elapsed_s;
    p.step_seconds = e.step_s;
    p.eta_seconds = e.eta_s;
    try {
      fn_(p);
    } catch (...) {
      if (!error) error = std::current_exception();
      if (e.kind == ProgressEvent::StageEnd) {
        pending = true;  // stage_end() is noexcept: remember, stop at the next event
        return;
      }
      throw CallbackThrew{};
    }
  }

 private:
  const ProgressCallback& fn_;
};

std::mutex& generate_mutex() {
  static std::mutex m;
  return m;
}
thread_local bool t_in_generate = false;
// The generation running now (there is at most one) watches this flag; cancel() raises it.
std::atomic<bool> g_cancel{false};
std::atomic<bool> g_running{false};

struct TempDir {
  std::string path;
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

Result run(const Options& o, const ProgressCallback& progress, std::exception_ptr& callback_error) {
  Result out;
  pipeline::GenerateRequest r = to_request(o, out.warnings);
  // Every option is checked (and every output found writable) before the demo model is built or
  // any weight is read.
  pipeline::GenerateSettings s = pipeline::resolve(r);
  pipeline::check_outputs(s);

  std::unique_ptr<CallbackAdapter> adapter;
  if (progress) adapter = std::make_unique<CallbackAdapter>(progress);
  TempDir demo;
  try {
    if (o.demo) {
      std::string tmpl = (fs::temp_directory_path() / "x2v-demo-XXXXXX").string();
      if (!mkdtemp(tmpl.data()))
        fail(ErrorKind::Io, "demo: cannot create a temporary folder in ", fs::temp_directory_path().string());
      demo.path = tmpl;
      {
        ProgressStage st(adapter.get(), "build demo model");
        pipeline::write_demo_model(tmpl, 2024, s.task == pipeline::Task::I2V);
      }
      s.model.model_dir = tmpl;
    }
    pipeline::GenerateResult g = pipeline::generate(s, adapter.get(), &g_cancel);
    out.outputs = g.written;
    for (const auto& st : g.stages) out.stages.push_back({st.name, st.seconds});
    out.width = g.width;
    out.height = g.height;
    out.frames = g.frames;
    out.fps = s.fps;
    out.seed = g.seed;
    out.peak_host_bytes = static_cast<int64_t>(g.peak_host_bytes);
    out.peak_device_bytes = static_cast<int64_t>(g.peak_device_bytes);
  } catch (const CallbackThrew&) {
    callback_error = adapter->error;
    throw;
  }
  return out;
}

}  // namespace

const char* version() { return X2V_VERSION; }

const char* status_name(Status s) {
  switch (s) {
    case Status::Ok: return "ok";
    case Status::InvalidArgument: return "invalid argument";
    case Status::NotFound: return "not found";
    case Status::BadFile: return "bad file";
    case Status::Unsupported: return "unsupported";
    case Status::Io: return "I/O error";
    case Status::OutOfMemory: return "out of memory";
    case Status::Device: return "device error";
    case Status::Internal: return "internal error";
    case Status::Cancelled: return "cancelled";
  }
  return "unknown";
}

bool cancel() {
  if (!g_running) return false;
  g_cancel = true;
  return true;
}

Result generate(const Options& options, const ProgressCallback& progress) {
  if (t_in_generate)
    throw Exception(Status::InvalidArgument, "x2v::generate called from its own progress callback; generations run one at a time");
  std::lock_guard<std::mutex> lock(generate_mutex());
  t_in_generate = true;
  g_cancel = false;
  g_running = true;
  struct Reset {
    ~Reset() {
      g_running = false;
      t_in_generate = false;
    }
  } reset;
  std::exception_ptr callback_error;
  try {
    return run(options, progress, callback_error);
  } catch (const CallbackThrew&) {
    std::rethrow_exception(callback_error);  // the progress callback's own exception, unchanged
  } catch (const pipeline::Cancelled&) {
    throw Exception(Status::Cancelled, "cancelled (x2v::cancel / x2v_cancel); nothing was written");
  } catch (const Error& e) {
    throw Exception(static_cast<Status>(api::status_code(e.kind())), e.what());
  } catch (const std::bad_alloc&) {
    throw Exception(Status::OutOfMemory, "out of host memory");
  } catch (const std::exception& e) {
    throw Exception(Status::Internal, std::string("internal error: ") + e.what());
  }
}

}  // namespace x2v
