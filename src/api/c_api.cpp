// The C API (include/x2v/x2v.h): handles around the C++ API's Options and Result, options set by
// key, and every exception turned into a status code and a message at the boundary. Setters only
// check that a key exists and that its value has the key's type; whether a value is acceptable is
// decided by the pipeline's resolve() when x2v_generate runs.
#include "x2v/x2v.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/status.h"
#include "core/error.h"
#include "pipeline/config_file.h"
#include "pipeline/request.h"
#include "x2v/x2v.hpp"

struct x2v_options {
  x2v::Options o;
};

struct x2v_result {
  x2v::Result r;
};

namespace {

using x2v::ErrorKind;
using x2v::fail;

thread_local std::string t_last_error;

// A value handed to a setter, before it is converted to the key's type.
struct Value {
  enum Type { Str, Int, Dbl, Bool, IntList } type = Str;
  std::string s;
  int64_t i = 0;
  double d = 0;
  bool b = false;
  std::vector<int> list;
};

std::string describe(const Value& v) {
  switch (v.type) {
    case Value::Str: return "the string \"" + v.s + "\"";
    case Value::Int: return "the integer " + std::to_string(v.i);
    case Value::Dbl: return "the number " + nlohmann::json(v.d).dump();
    case Value::Bool: return v.b ? "true" : "false";
    case Value::IntList: return "a list";
  }
  return "a value";
}

std::string as_string(const std::string& key, const Value& v) {
  if (v.type != Value::Str) fail(ErrorKind::InvalidArgument, "option \"", key, "\" takes a string, got ", describe(v));
  return v.s;
}

int64_t as_int64(const std::string& key, const Value& v) {
  if (v.type == Value::Int) return v.i;
  if (v.type == Value::Dbl && std::isfinite(v.d) && v.d == std::floor(v.d) && std::fabs(v.d) < 9e15)
    return static_cast<int64_t>(v.d);
  if (v.type == Value::Str) {
    int64_t x = 0;
    const char* end = v.s.data() + v.s.size();
    auto [p, ec] = std::from_chars(v.s.data(), end, x);
    if (ec == std::errc() && p == end && !v.s.empty()) return x;
  }
  fail(ErrorKind::InvalidArgument, "option \"", key, "\" takes an integer, got ", describe(v));
}

int as_int(const std::string& key, const Value& v) {
  const int64_t x = as_int64(key, v);
  if (x < -2147483647 || x > 2147483647)
    fail(ErrorKind::InvalidArgument, "option \"", key, "\" takes a 32-bit integer, got ", x);
  return static_cast<int>(x);
}

double as_double(const std::string& key, const Value& v) {
  if (v.type == Value::Dbl) return v.d;
  if (v.type == Value::Int) return static_cast<double>(v.i);
  if (v.type == Value::Str && !v.s.empty()) {
    char* end = nullptr;
    const double d = std::strtod(v.s.c_str(), &end);
    if (end == v.s.c_str() + v.s.size()) return d;
  }
  fail(ErrorKind::InvalidArgument, "option \"", key, "\" takes a number, got ", describe(v));
}

bool as_bool(const std::string& key, const Value& v) {
  if (v.type == Value::Bool) return v.b;
  if (v.type == Value::Int && (v.i == 0 || v.i == 1)) return v.i == 1;
  if (v.type == Value::Str) {
    if (v.s == "true" || v.s == "1") return true;
    if (v.s == "false" || v.s == "0") return false;
  }
  fail(ErrorKind::InvalidArgument, "option \"", key, "\" takes true or false (1 or 0), got ", describe(v));
}

// "832x480" (or "832*480", the reference's spelling): width first.
void parse_size(const std::string& s, x2v::Options& o) {
  const size_t x = s.find_first_of("x*X");
  int w = 0, h = 0;
  bool ok = x != std::string::npos && x > 0 && x + 1 < s.size();
  if (ok) {
    const char* a = s.data();
    auto r1 = std::from_chars(a, a + x, w);
    auto r2 = std::from_chars(a + x + 1, a + s.size(), h);
    ok = r1.ec == std::errc() && r1.ptr == a + x && r2.ec == std::errc() && r2.ptr == a + s.size();
  }
  if (!ok) fail(ErrorKind::InvalidArgument, "option \"size\" \"", s, "\": give WIDTHxHEIGHT, e.g. 832x480");
  o.width = w;
  o.height = h;
}

std::vector<int> parse_step_list(const std::string& key, const Value& v) {
  if (v.type == Value::IntList) return v.list;
  const std::string s = as_string(key, v);
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    int t = 0;
    auto [p, ec] = std::from_chars(s.data() + pos, s.data() + comma, t);
    if (ec != std::errc() || p != s.data() + comma || comma == pos)
      fail(ErrorKind::InvalidArgument, "option \"", key, "\" \"", s,
           "\": give comma-separated timesteps, e.g. 1000,750,500,250");
    out.push_back(t);
    pos = comma + 1;
  }
  return out;
}

// "--model-dir" and "model-dir" are "model_dir".
std::string normalize(const char* key) {
  if (!key) fail(ErrorKind::InvalidArgument, "option key is NULL");
  std::string k = key;
  if (k.rfind("--", 0) == 0) k.erase(0, 2);
  for (char& c : k)
    if (c == '-') c = '_';
  return k;
}

// Sets (v) or puts back to its default (v == nullptr) one option. Returns false for a key that is
// not one of the API's (set_json hands those to the LightX2V config reader).
bool apply(x2v::Options& o, const std::string& k, const Value* v) {
  auto str = [&](std::string& field) { field = v ? as_string(k, *v) : std::string(); };
  x2v::ModelFiles& m = o.model;
  if (k == "task") str(o.task);
  else if (k == "model_dir") str(m.dir);
  else if (k == "dit") str(m.dit);
  else if (k == "dit_config") str(m.dit_config);
  else if (k == "t5") str(m.t5);
  else if (k == "tokenizer") str(m.tokenizer);
  else if (k == "clip") str(m.clip);
  else if (k == "clip_config") str(m.clip_config);
  else if (k == "vae") str(m.vae);
  else if (k == "prompt") str(o.prompt);
  else if (k == "negative_prompt") {
    if (v) o.negative_prompt = as_string(k, *v);
    else o.negative_prompt.reset();
  } else if (k == "image") str(o.image);
  else if (k == "solver") str(o.solver);
  else if (k == "text_embeddings") str(o.text_embeddings);
  else if (k == "clip_embeddings") str(o.clip_embeddings);
  else if (k == "noise") str(o.noise);
  else if (k == "output") str(o.output);
  else if (k == "output_tensor") str(o.output_tensor);
  else if (k == "device") str(o.device);
  else if (k == "config") str(o.config_file);
  else if (k == "size") {
    if (v) parse_size(as_string(k, *v), o);
    else o.width.reset(), o.height.reset();
  } else if (k == "step_list") {
    if (v) o.step_list = parse_step_list(k, *v);
    else o.step_list.clear();
  } else if (k == "width") o.width = v ? std::optional<int>(as_int(k, *v)) : std::nullopt;
  else if (k == "height") o.height = v ? std::optional<int>(as_int(k, *v)) : std::nullopt;
  else if (k == "frames") o.frames = v ? std::optional<int>(as_int(k, *v)) : std::nullopt;
  else if (k == "steps") o.steps = v ? std::optional<int>(as_int(k, *v)) : std::nullopt;
  else if (k == "fps") o.fps = v ? std::optional<int>(as_int(k, *v)) : std::nullopt;
  else if (k == "max_area") o.max_area = v ? std::optional<int64_t>(as_int64(k, *v)) : std::nullopt;
  else if (k == "seed") o.seed = v ? std::optional<int64_t>(as_int64(k, *v)) : std::nullopt;
  else if (k == "shift") o.shift = v ? std::optional<double>(as_double(k, *v)) : std::nullopt;
  else if (k == "guide_scale") o.guide_scale = v ? std::optional<double>(as_double(k, *v)) : std::nullopt;
  else if (k == "enable_cfg") o.enable_cfg = v ? std::optional<bool>(as_bool(k, *v)) : std::nullopt;
  else if (k == "demo") o.demo = v ? as_bool(k, *v) : false;
  else return false;
  return true;
}

void set(x2v_options* options, const char* key, const Value* v) {
  if (!options) fail(ErrorKind::InvalidArgument, "options is NULL (create them with x2v_options_new)");
  const std::string k = normalize(key);
  if (!apply(options->o, k, v))
    fail(ErrorKind::InvalidArgument, "unknown option \"", k,
         "\"; see include/x2v/x2v.h for the keys (LightX2V config keys go through x2v_options_set_json)");
}

// Not named from_json: an unqualified call with a json argument would also find nlohmann's from_json
// templates by argument-dependent lookup, which newer nlohmann versions turn into a hard error.
Value option_value(const std::string& key, const nlohmann::ordered_json& j) {
  Value v;
  if (j.is_string()) v.s = j.get<std::string>();
  else if (j.is_boolean()) v.type = Value::Bool, v.b = j.get<bool>();
  else if (j.is_number_integer()) v.type = Value::Int, v.i = j.get<int64_t>();
  else if (j.is_number()) v.type = Value::Dbl, v.d = j.get<double>();
  else if (j.is_array() && key == "step_list") {
    v.type = Value::IntList;
    for (const auto& e : j) {
      Value x = option_value(key, e);
      if (x.type == Value::IntList) fail(ErrorKind::InvalidArgument, "option \"step_list\" takes a list of integers");
      v.list.push_back(as_int(key, x));
    }
  } else {
    fail(ErrorKind::InvalidArgument, "option \"", key, "\" cannot take ", j.dump());
  }
  return v;
}

void set_json(x2v_options* options, const char* text) {
  if (!options) fail(ErrorKind::InvalidArgument, "options is NULL (create them with x2v_options_new)");
  if (!text) fail(ErrorKind::InvalidArgument, "options JSON is NULL");
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::InvalidArgument, "options JSON is not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(ErrorKind::InvalidArgument, "options JSON must be an object, got ", j.type_name());
  // Applied to a copy, so that a bad key leaves the handle as it was.
  x2v::Options o = options->o;
  nlohmann::json lightx2v = nlohmann::json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string k = normalize(it.key().c_str());
    if (it.value().is_null()) {
      if (!apply(o, k, nullptr)) lightx2v.erase(k);
      continue;
    }
    const Value v = option_value(k, it.value());
    if (!apply(o, k, &v)) lightx2v[it.key()] = nlohmann::json::parse(it.value().dump());
  }
  if (!lightx2v.empty()) {
    // The LightX2V keys: checked now by the pipeline's config reader, applied by generate().
    nlohmann::json merged = o.config_json.empty() ? nlohmann::json::object() : nlohmann::json::parse(o.config_json);
    merged.update(lightx2v);
    x2v::pipeline::GenerateRequest scratch;
    x2v::pipeline::apply_config_json(merged, "options JSON", scratch);
    o.config_json = merged.dump();
  }
  options->o = std::move(o);
}

int to_status(const std::exception_ptr& e, std::string& msg) {
  try {
    std::rethrow_exception(e);
  } catch (const x2v::Exception& x) {
    msg = x.what();
    return static_cast<int>(x.status());
  } catch (const x2v::Error& x) {
    msg = x.what();
    return x2v::api::status_code(x.kind());
  } catch (const std::bad_alloc&) {
    msg = "out of host memory";
    return X2V_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& x) {
    msg = std::string("internal error: ") + x.what();
    return X2V_ERR_INTERNAL;
  } catch (...) {
    msg = "internal error: an unknown exception";
    return X2V_ERR_INTERNAL;
  }
}

int report(const std::exception_ptr& e, char* buf = nullptr, size_t size = 0) {
  std::string msg;
  const int rc = to_status(e, msg);
  try {
    t_last_error = msg;
  } catch (...) {
  }
  if (buf && size > 0) {
    const size_t n = std::min(msg.size(), size - 1);
    std::memcpy(buf, msg.data(), n);
    buf[n] = '\0';
  }
  return rc;
}

template <class F>
int guarded(F&& f) {
  try {
    f();
    return X2V_OK;
  } catch (...) {
    return report(std::current_exception());
  }
}

}  // namespace

extern "C" {

const char* x2v_version(void) { return x2v::version(); }

const char* x2v_status_name(int status) { return x2v::status_name(static_cast<x2v::Status>(status)); }

const char* x2v_last_error(void) { return t_last_error.c_str(); }

x2v_options* x2v_options_new(void) { return new (std::nothrow) x2v_options(); }

void x2v_options_free(x2v_options* options) { delete options; }

int x2v_options_set_string(x2v_options* options, const char* key, const char* value) {
  return guarded([&] {
    if (!value) fail(ErrorKind::InvalidArgument, "option \"", key ? key : "", "\": the value is NULL (unset it with x2v_options_unset)");
    Value v;
    v.s = value;
    set(options, key, &v);
  });
}

int x2v_options_set_int(x2v_options* options, const char* key, int64_t value) {
  return guarded([&] {
    Value v;
    v.type = Value::Int;
    v.i = value;
    set(options, key, &v);
  });
}

int x2v_options_set_double(x2v_options* options, const char* key, double value) {
  return guarded([&] {
    Value v;
    v.type = Value::Dbl;
    v.d = value;
    set(options, key, &v);
  });
}

int x2v_options_unset(x2v_options* options, const char* key) {
  return guarded([&] { set(options, key, nullptr); });
}

int x2v_options_set_json(x2v_options* options, const char* json) {
  return guarded([&] { set_json(options, json); });
}

int x2v_generate(const x2v_options* options, x2v_progress_fn progress, void* user_data, x2v_result** result,
                 char* error, size_t error_size) {
  if (result) *result = nullptr;
  if (error && error_size > 0) error[0] = '\0';
  try {
    if (!options) fail(ErrorKind::InvalidArgument, "x2v_generate: options is NULL (create them with x2v_options_new)");
    auto res = std::make_unique<x2v_result>();
    x2v::ProgressCallback fn;
    if (progress) {
      fn = [progress, user_data](const x2v::ProgressInfo& p) {
        const std::string stage(p.stage);
        const int event = p.event == x2v::ProgressInfo::Event::StageBegin ? X2V_PROGRESS_STAGE_BEGIN
                          : p.event == x2v::ProgressInfo::Event::Step     ? X2V_PROGRESS_STEP
                                                                          : X2V_PROGRESS_STAGE_END;
        if (progress(user_data, event, stage.c_str(), p.step, p.total, p.seconds) != 0) {
          std::string where = "\"" + stage + "\"";
          if (event == X2V_PROGRESS_STEP) where += " at step " + std::to_string(p.step) + " of " + std::to_string(p.total);
          throw x2v::Exception(x2v::Status::Cancelled, "cancelled by the progress callback during " + where);
        }
      };
    }
    res->r = x2v::generate(options->o, fn);
    if (result) *result = res.release();
    return X2V_OK;
  } catch (...) {
    return report(std::current_exception(), error, error_size);
  }
}

int x2v_cancel(void) { return x2v::cancel() ? 1 : 0; }

void x2v_result_free(x2v_result* result) { delete result; }

size_t x2v_result_output_count(const x2v_result* r) { return r ? r->r.outputs.size() : 0; }
const char* x2v_result_output(const x2v_result* r, size_t i) {
  return r && i < r->r.outputs.size() ? r->r.outputs[i].c_str() : nullptr;
}
size_t x2v_result_stage_count(const x2v_result* r) { return r ? r->r.stages.size() : 0; }
const char* x2v_result_stage_name(const x2v_result* r, size_t i) {
  return r && i < r->r.stages.size() ? r->r.stages[i].name.c_str() : nullptr;
}
double x2v_result_stage_seconds(const x2v_result* r, size_t i) {
  return r && i < r->r.stages.size() ? r->r.stages[i].seconds : -1.0;
}
size_t x2v_result_warning_count(const x2v_result* r) { return r ? r->r.warnings.size() : 0; }
const char* x2v_result_warning(const x2v_result* r, size_t i) {
  return r && i < r->r.warnings.size() ? r->r.warnings[i].c_str() : nullptr;
}
int x2v_result_width(const x2v_result* r) { return r ? r->r.width : 0; }
int x2v_result_height(const x2v_result* r) { return r ? r->r.height : 0; }
int x2v_result_frames(const x2v_result* r) { return r ? r->r.frames : 0; }
int x2v_result_fps(const x2v_result* r) { return r ? r->r.fps : 0; }
uint64_t x2v_result_seed(const x2v_result* r) { return r ? r->r.seed : 0; }
int64_t x2v_result_peak_host_bytes(const x2v_result* r) { return r ? r->r.peak_host_bytes : 0; }
int64_t x2v_result_peak_device_bytes(const x2v_result* r) { return r ? r->r.peak_device_bytes : 0; }

}  // extern "C"
