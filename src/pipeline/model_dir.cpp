#include "pipeline/model_dir.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <system_error>

namespace x2v::pipeline {
namespace fs = std::filesystem;

namespace {

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}
bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Weight files directly in `dir` (not recursive), sorted.
std::vector<fs::path> weight_files(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!is_dir(dir)) return out;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    if (ends_with(name, ".safetensors") || ends_with(name, ".pth") || ends_with(name, ".pt")) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Whether a file name in a model folder is one of the non-DiT components.
bool is_component_name(const std::string& name) {
  std::string l = name;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* k : {"t5", "umt5", "vae", "clip", "lora"})
    if (l.find(k) != std::string::npos) return true;
  return false;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

// The user's path for `option`: must exist (as a file, or a folder when `folder_ok`).
std::string checked_path(const std::string& p, const char* option, bool folder_ok) {
  std::error_code ec;
  if (!fs::exists(p, ec))
    fail(ErrorKind::NotFound, option, " ", p, ": no such file", folder_ok ? " or folder" : "");
  if (!folder_ok && is_dir(p)) fail(ErrorKind::InvalidArgument, option, " ", p, " is a folder; give the file");
  return p;
}

struct DitHit {
  fs::path path;
  std::string layout;
};

// The DiT in one folder: an index, the single official file, else one unambiguous weight file.
// `tried` collects what was looked for, for the error message.
bool find_dit_in(const fs::path& dir, const std::string& layout, bool single_file_ok, std::vector<std::string>& tried,
                 DitHit& hit) {
  if (!is_dir(dir)) return false;
  tried.push_back((dir / kDitIndex).string());
  if (is_file(dir / kDitIndex)) {
    hit = {dir / kDitIndex, layout};
    return true;
  }
  tried.push_back((dir / kDitFile).string());
  if (is_file(dir / kDitFile)) {
    hit = {dir / kDitFile, layout};
    return true;
  }
  if (!single_file_ok) return false;
  std::vector<fs::path> cands;
  for (const auto& f : weight_files(dir))
    if (!is_component_name(f.filename().string())) cands.push_back(f);
  tried.push_back((dir / "*.safetensors").string());
  if (cands.size() == 1) {
    hit = {cands[0], layout};
    return true;
  }
  if (cands.size() > 1) {
    std::vector<std::string> names;
    for (const auto& c : cands) names.push_back(c.filename().string());
    fail(ErrorKind::InvalidArgument, "several DiT candidates in ", dir.string(), ": ", join(names),
         "; pick one with --dit FILE");
  }
  return false;
}

DitHit find_dit(const fs::path& root, std::vector<std::string>& tried) {
  DitHit hit;
  if (find_dit_in(root, "Wan-AI", false, tried, hit)) return hit;
  // LightX2V's find_torch_model_path order.
  for (const char* sub : {"original", "fp8", "int8", "distill_models", "distill_fp8", "distill_int8"})
    if (find_dit_in(root / sub, "LightX2V", true, tried, hit)) return hit;
  for (const char* sub : {"diffusion_models", "split_files/diffusion_models"})
    if (find_dit_in(root / sub, "ComfyUI", true, tried, hit)) return hit;
  if (find_dit_in(root, "LightX2V", true, tried, hit)) return hit;
  return {};
}

// A component: the first of `names` in `root`, else the single weight file of a ComfyUI folder.
std::string find_component(const fs::path& root, const std::vector<std::string>& names,
                           const std::vector<std::string>& comfy_dirs, std::vector<std::string>& tried) {
  for (const auto& n : names) {
    tried.push_back((root / n).string());
    if (is_file(root / n)) return (root / n).string();
  }
  for (const auto& d : comfy_dirs) {
    for (const char* pre : {"", "split_files/"}) {
      const fs::path dir = root / (std::string(pre) + d);
      if (!is_dir(dir)) continue;
      tried.push_back((dir / "*.safetensors").string());
      auto files = weight_files(dir);
      if (files.size() == 1) return files[0].string();
      if (files.size() > 1) {
        std::vector<std::string> fnames;
        for (const auto& f : files) fnames.push_back(f.filename().string());
        fail(ErrorKind::InvalidArgument, "several files in ", dir.string(), ": ", join(fnames),
             "; pick one with the matching option (--t5, --vae, --clip)");
      }
    }
  }
  return {};
}

[[noreturn]] void missing(const char* what, const char* option, std::vector<std::string> tried,
                          const std::string& hint) {
  std::vector<std::string> uniq;
  for (const auto& t : tried)
    if (std::find(uniq.begin(), uniq.end(), t) == uniq.end()) uniq.push_back(t);
  std::ostringstream os;
  if (uniq.empty()) os << what << " not found (no --model-dir to look in)";
  else os << what << " not found: looked for " << join(uniq, ", ");
  os << "; pass " << option << hint;
  fail(ErrorKind::NotFound, os.str());
}

}  // namespace

ModelFiles find_dit_files(const ModelPaths& p) {
  ModelFiles f;
  const bool have_dir = !p.model_dir.empty();
  if (have_dir) {
    std::error_code ec;
    if (!fs::exists(p.model_dir, ec)) fail(ErrorKind::NotFound, "--model-dir ", p.model_dir, ": no such folder");
    if (!is_dir(p.model_dir))
      fail(ErrorKind::InvalidArgument, "--model-dir ", p.model_dir,
           " is a file, not a folder; give the model's folder (or the file with --dit)");
  }
  const fs::path root = have_dir ? fs::path(p.model_dir) : fs::path();

  fs::path dit_dir;
  if (!p.dit.empty()) {
    checked_path(p.dit, "--dit", true);
    if (is_dir(p.dit)) {
      std::vector<std::string> tried;
      DitHit hit;
      if (!find_dit_in(p.dit, "files given on the command line", true, tried, hit))
        missing("DiT weights", "--dit FILE", tried, " (a .safetensors, an .index.json or a .pth)");
      f.dit = hit.path.string();
    } else {
      f.dit = p.dit;
    }
    f.layout = "files given on the command line";
  } else if (have_dir) {
    std::vector<std::string> tried;
    DitHit hit = find_dit(root, tried);
    if (hit.path.empty())
      missing("DiT weights", "--dit FILE", tried,
              " or check that --model-dir is a Wan2.1 download (Wan-AI/Wan2.1-T2V-1.3B, -T2V-14B, -I2V-14B-480P/720P)");
    f.dit = hit.path.string();
    f.layout = hit.layout;
  } else {
    fail(ErrorKind::InvalidArgument,
         "no model: pass --model-dir DIR (a Wan2.1 download, see README \"Running a real model\"), or the files "
         "with --dit, --vae, --t5 and --tokenizer (or try --demo)");
  }
  dit_dir = fs::path(f.dit).parent_path();

  // config.json: beside the DiT file, then in the model folder (LightX2V keeps it at the top).
  if (!p.dit_config.empty()) {
    f.dit_config = checked_path(p.dit_config, "--dit-config", false);
  } else {
    for (const fs::path& d : {dit_dir, root}) {
      if (d.empty()) continue;
      if (is_file(d / kConfigFile)) {
        f.dit_config = (d / kConfigFile).string();
        break;
      }
    }
  }

  return f;
}

ModelFiles find_model_files(const ModelPaths& p, const Needs& needs) {
  ModelFiles f = find_dit_files(p);
  const bool have_dir = !p.model_dir.empty();
  const fs::path root = have_dir ? fs::path(p.model_dir) : fs::path();
  auto component = [&](const std::string& given, const char* option, const char* what,
                       const std::vector<std::string>& names, const std::vector<std::string>& comfy) -> std::string {
    if (!given.empty()) return checked_path(given, option, false);
    std::vector<std::string> tried;
    if (have_dir) {
      std::string hit = find_component(root, names, comfy, tried);
      if (!hit.empty()) return hit;
    }
    missing(what, option, tried, " FILE");
  };

  f.vae = component(p.vae, "--vae", "VAE weights", {kVaeFile, "Wan2.1_VAE.safetensors"}, {"vae"});
  if (needs.text_encoder) {
    f.t5 = component(p.t5, "--t5", "T5 text encoder weights",
                     {kT5File, "models_t5_umt5-xxl-enc-bf16.safetensors", "umt5-xxl-enc-bf16.safetensors"},
                     {"text_encoders"});
    if (!p.tokenizer.empty()) {
      f.tokenizer = checked_path(p.tokenizer, "--tokenizer", true);
    } else {
      std::vector<std::string> tried;
      if (have_dir) {
        tried.push_back((root / kTokenizerDir).string() + "/");
        if (is_dir(root / kTokenizerDir)) f.tokenizer = (root / kTokenizerDir).string();
      }
      if (f.tokenizer.empty()) {
        missing("the umT5 tokenizer", "--tokenizer DIR", tried,
                " (the google/umt5-xxl folder of a Wan-AI download; ComfyUI folders do not ship it), or give "
                "--text-embeddings FILE");
      }
    }
  }
  if (needs.clip) {
    f.clip = component(p.clip, "--clip", "CLIP image encoder weights", {kClipFile, "models_clip_open-clip-xlm-roberta-large-vit-huge-14.safetensors"}, {"clip_vision"});
    if (!p.clip_config.empty()) {
      f.clip_config = checked_path(p.clip_config, "--clip-config", false);
    } else if (have_dir && is_file(root / kClipConfigFile)) {
      f.clip_config = (root / kClipConfigFile).string();
    }
  }
  return f;
}

}  // namespace x2v::pipeline
