// What the text and image encoders share: their checkpoint-name variants mapped onto the official
// Wan names (the T5 of models_t5_umt5-xxl-enc-bf16.pth, the `visual.*` tower of the open-clip
// XLM-RoBERTa ViT-H/14 checkpoint), and the reading of their --config JSON.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "io/weights.h"

namespace x2v::models::wan {

// A view of `w` under the official T5 names (`token_embedding.weight`, `blocks.i.attn.q.weight`, ...).
// Accepts the official names and Hugging Face's UMT5EncoderModel / T5EncoderModel names (diffusers
// `text_encoder/`, ComfyUI's umt5_xxl_*.safetensors), with or without a prefix before `encoder.` /
// `shared.`. A T5 that keeps one relative-position table in block 0 (classic T5) maps it to the
// shared `pos_embedding.embedding.weight`. Errors name the file when no T5 is found.
std::shared_ptr<io::WeightStore> t5_official_view(std::shared_ptr<io::WeightStore> w);

// A view of `w` under the official CLIP vision names (`visual.patch_embedding.weight`, ...). Accepts
// the official names, open_clip's (`visual.conv1.weight`, `visual.transformer.resblocks.i...`) and
// Hugging Face CLIPVisionModel's (`vision_model.*`). HF stores q/k/v apart: those appear as
// `visual.transformer.i.attn.{to_q,to_k,to_v}.{weight,bias}` for the loader to fuse.
std::shared_ptr<io::WeightStore> clip_official_view(std::shared_ptr<io::WeightStore> w);

// A --config file: a JSON object whose fields are read once each; fields nobody asked for are an
// error at finish() (a typo must not silently fall back to a default).
class EncoderConfigJson {
 public:
  EncoderConfigJson() = default;                  // no file: every getter returns nullopt
  explicit EncoderConfigJson(const std::string& path);
  static EncoderConfigJson parse(const std::string& text, const std::string& label);
  std::optional<int64_t> integer(const std::string& key);
  std::optional<double> number(const std::string& key);
  std::optional<bool> boolean(const std::string& key);
  std::optional<std::string> string(const std::string& key);
  // Fields the reference constructors accept but that do not change inference (dropouts, ...).
  void ignore(const std::string& key);
  void finish(const std::string& known_fields) const;
  const std::string& label() const { return label_; }

 private:
  const nlohmann::json* take(const std::string& key);
  nlohmann::json j_ = nlohmann::json::object();
  std::string label_ = "config";
  std::set<std::string> used_;
};

}  // namespace x2v::models::wan
