#include "pipeline/config_file.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace x2v::pipeline {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& label, const std::string& key, const std::string& want, const json& v) {
  fail(ErrorKind::InvalidArgument, label, ": \"", key, "\" must be ", want, ", got ", v.dump());
}

int64_t get_int(const std::string& label, const std::string& key, const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  bad(label, key, "an integer", v);
}

int get_int32(const std::string& label, const std::string& key, const json& v) {
  const int64_t x = get_int(label, key, v);
  if (x < -2147483647 || x > 2147483647) bad(label, key, "a 32-bit integer", v);
  return static_cast<int>(x);
}

double get_num(const std::string& label, const std::string& key, const json& v) {
  if (!v.is_number()) bad(label, key, "a number", v);
  return v.get<double>();
}

bool get_bool(const std::string& label, const std::string& key, const json& v) {
  if (!v.is_boolean()) bad(label, key, "true or false", v);
  return v.get<bool>();
}

std::string get_str(const std::string& label, const std::string& key, const json& v) {
  if (!v.is_string()) bad(label, key, "a string", v);
  return v.get<std::string>();
}

// Keys of LightX2V's configs that describe its runtime (kernels, memory, parallelism, caching,
// quantization, extra stages): valid, but x2v chooses these itself or does not offer them yet.
const std::set<std::string>& runtime_keys() {
  static const std::set<std::string> k = {
      "self_attn_1_type", "cross_attn_1_type", "cross_attn_2_type", "attn_type", "clip_attn_type",
      "self_attn_1_setting", "cross_attn_1_setting", "cross_attn_2_setting", "rope_type", "rms_norm_type",
      "layer_norm_type", "modulate_type", "mxfp8_fuse_enable", "use_compile", "dit_quantized", "dit_quant_scheme",
      "dit_quantized_ckpt", "t5_quantized", "t5_quant_scheme", "t5_quantized_ckpt", "clip_quantized",
      "clip_quant_scheme", "clip_quantized_ckpt", "weight_auto_quant", "do_mm_calib", "mm_config", "cpu_offload",
      "offload_granularity", "offload_ratio", "lazy_load", "num_disk_workers", "unload_modules", "t5_cpu_offload",
      "clip_cpu_offload", "vae_cpu_offload", "t5_lazy_load", "clean_cuda_cache", "use_tiling_vae", "use_tae",
      "use_lightvae", "vae_type", "tae_path", "parallel", "seq_parallel", "feature_caching", "teacache_thresh",
      "coefficients", "use_ret_steps", "magcache_thresh", "magcache_K", "magcache_calibration", "magcache_ratios",
      "residual_diff_threshold", "downsample_factor", "lora_configs", "lora_dynamic_apply", "changing_resolution",
      "resolution_rate", "changing_resolution_steps", "video_frame_interpolation", "video_super_resolution",
      "use_image_encoder", "enable_reuse", "sub_servers", "disagg_mode", "disagg_config", "cpu_offload_activations",
      "use_prompt_enhancer", "return_result_tensor", "save_result_path", "use_31_block", "audio_sr", "resize_mode",
      "aspect_ratio", "infer_dtype", "sensitive_layer_dtype", "dit_original_ckpt", "t5_original_ckpt",
      "t5_tokenizer_path", "clip_original_ckpt", "vae_path", "high_noise_original_ckpt", "low_noise_original_ckpt",
      "boundary", "boundary_step_index", "sample_solver_type", "num_fragments", "transformer_model_name"};
  return k;
}

// Architecture keys (a config.json merged into a LightX2V config): the DiT's own config.json decides.
const std::set<std::string>& architecture_keys() {
  static const std::set<std::string> k = {"dim", "ffn_dim", "freq_dim", "in_dim", "out_dim", "num_heads",
                                          "num_layers", "eps", "qk_norm", "cross_attn_norm", "window_size",
                                          "model_type", "_class_name", "_diffusers_version", "text_dim"};
  return k;
}

void expect_list(const std::string& label, const std::string& key, const json& v, const std::vector<int>& want) {
  bool ok = v.is_array() && v.size() == want.size();
  for (size_t i = 0; ok && i < want.size(); ++i) ok = v[i].is_number() && v[i].get<double>() == want[i];
  if (!ok) {
    std::ostringstream w;
    w << "[";
    for (size_t i = 0; i < want.size(); ++i) w << (i ? ", " : "") << want[i];
    w << "] (Wan2.1)";
    fail(ErrorKind::Unsupported, label, ": \"", key, "\" is ", v.dump(), "; x2v runs Wan2.1 models, which need ",
         w.str());
  }
}

}  // namespace

std::vector<std::string> apply_config_json(const json& j, const std::string& label, GenerateRequest& r) {
  if (!j.is_object()) fail(ErrorKind::BadFile, label, ": a config file must hold a JSON object, got ", j.type_name());
  std::vector<std::string> warnings;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (k == "infer_steps") r.steps = get_int32(label, k, v);
    else if (k == "sample_shift") r.shift = get_num(label, k, v);
    else if (k == "sample_guide_scale") {
      if (v.is_array()) {
        // Wan2.2's two experts each have a scale; one model can only use one.
        if (v.empty()) bad(label, k, "a number", v);
        const double g = get_num(label, k, v[0]);
        for (const auto& e : v)
          if (get_num(label, k, e) != g)
            fail(ErrorKind::Unsupported, label, ": \"sample_guide_scale\" ", v.dump(),
                 " gives two experts different scales (Wan2.2 A14B); a Wan2.1 model takes one number");
        r.guide_scale = g;
      } else {
        r.guide_scale = get_num(label, k, v);
      }
    } else if (k == "enable_cfg") r.enable_cfg = get_bool(label, k, v);
    else if (k == "denoising_step_list") {
      if (!v.is_array()) bad(label, k, "a list of timesteps like [1000, 750, 500, 250]", v);
      r.step_list.clear();
      for (const auto& e : v) r.step_list.push_back(get_int32(label, k, e));
    } else if (k == "target_height") r.height = get_int32(label, k, v);
    else if (k == "target_width") r.width = get_int32(label, k, v);
    else if (k == "target_video_length") r.frames = get_int32(label, k, v);
    else if (k == "fps" || k == "target_fps") r.fps = get_int32(label, k, v);
    else if (k == "seed") r.seed = get_int(label, k, v);
    else if (k == "max_area") r.max_area = get_int(label, k, v);
    else if (k == "prompt") r.prompt = get_str(label, k, v);
    else if (k == "negative_prompt" || k == "sample_neg_prompt") r.negative_prompt = get_str(label, k, v);
    else if (k == "task") r.task = parse_task(get_str(label, k, v));
    else if (k == "sample_solver") r.solver = sched::parse_solver(get_str(label, k, v));
    else if (k == "scheduler_type") {
      const std::string s = get_str(label, k, v);
      if (s == "WanStepDistillScheduler") r.solver = sched::Solver::Euler;
      else if (s == "WanScheduler") r.solver = sched::Solver::UniPC;
      else
        fail(ErrorKind::Unsupported, label, ": scheduler_type \"", s,
             "\" is not available; x2v has WanScheduler (unipc) and WanStepDistillScheduler (euler)");
    } else if (k == "model_cls") {
      const std::string s = get_str(label, k, v);
      if (s == "wan2.1_distill") {
        if (!r.solver) r.solver = sched::Solver::Euler;
      } else if (s != "wan2.1") {
        fail(ErrorKind::Unsupported, label, ": model_cls \"", s, "\" is not supported; x2v runs wan2.1 and wan2.1_distill");
      }
    } else if (k == "text_len") expect_list(label, k, json::array({v}), {512});
    else if (k == "num_channels_latents") expect_list(label, k, json::array({v}), {16});
    else if (k == "vae_stride") expect_list(label, k, v, {4, 8, 8});
    else if (k == "patch_size") expect_list(label, k, v, {1, 2, 2});
    else if (k == "target_shape") {
      if (!v.is_array() || v.size() != 2) bad(label, k, "[height, width]", v);
      r.height = get_int32(label, k, v[0]);
      r.width = get_int32(label, k, v[1]);
    } else if (architecture_keys().count(k))
      warnings.push_back(label + ": \"" + k + "\" ignored: the architecture comes from the DiT's config.json");
    else if (runtime_keys().count(k))
      warnings.push_back(label + ": \"" + k + "\" is a LightX2V runtime option x2v does not apply; ignored");
    else
      warnings.push_back(label + ": unknown key \"" + k + "\" ignored");
  }
  return warnings;
}

std::vector<std::string> apply_config_file(const std::string& path, GenerateRequest& r) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::NotFound, "--config ", path, ": cannot open the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (text.size() > (1u << 20)) fail(ErrorKind::BadFile, "--config ", path, ": over 1 MiB; not a config file");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(ErrorKind::BadFile, "--config ", path, ": not valid JSON (", e.what(), ")");
  }
  return apply_config_json(j, path, r);
}

}  // namespace x2v::pipeline
