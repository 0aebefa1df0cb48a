#include "models/wan/encoder_keys.h"

#include <fstream>
#include <sstream>
#include <vector>

namespace x2v::models::wan {

namespace {

using Map = std::function<std::optional<std::string>(const std::string&)>;

// `name` == head + <decimal index> + tail? Returns the index.
std::optional<int64_t> indexed(const std::string& name, const std::string& head, const std::string& tail) {
  if (name.size() <= head.size() + tail.size() || name.compare(0, head.size(), head) != 0 ||
      name.compare(name.size() - tail.size(), tail.size(), tail) != 0)
    return std::nullopt;
  const std::string digits = name.substr(head.size(), name.size() - head.size() - tail.size());
  if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(digits);
}

// The prefix in front of `suffix` in the first stored name ending with it.
std::optional<std::string> prefix_of(const io::WeightStore& w, const std::string& suffix) {
  for (const auto& n : w.names())
    if (n.size() >= suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      return n.substr(0, n.size() - suffix.size());
  return std::nullopt;
}

bool strip(std::string& s, const std::string& prefix) {
  if (s.compare(0, prefix.size(), prefix) != 0) return false;
  s.erase(0, prefix.size());
  return true;
}

// Per-block renames: stored tail (after "<head><i>.") → official tail (after "<out_head><i>.").
std::optional<std::string> rename_block(const std::string& rest, const std::string& head, const std::string& out_head,
                                        const std::vector<std::pair<std::string, std::string>>& tails) {
  for (const auto& [from, to] : tails)
    if (auto i = indexed(rest, head, "." + from)) return out_head + std::to_string(*i) + "." + to;
  return std::nullopt;
}

void reject_scaled_fp8(const io::WeightStore& w) {
  for (const auto& n : w.names())
    if (n == "scaled_fp8" || (n.size() > 13 && n.compare(n.size() - 13, 13, ".scale_weight") == 0))
      fail(ErrorKind::Unsupported, w.source(),
           ": scaled-fp8 checkpoints (ComfyUI *_fp8_scaled) are not supported for the encoders yet; use the bf16/fp16 "
           "file");
}

}  // namespace

std::shared_ptr<io::WeightStore> t5_official_view(std::shared_ptr<io::WeightStore> w) {
  if (w->has("token_embedding.weight")) return w;
  reject_scaled_fp8(*w);
  const auto prefix = prefix_of(*w, "encoder.block.0.layer.0.SelfAttention.q.weight");
  if (!prefix)
    fail(ErrorKind::BadFile, w->source(),
         ": no T5 encoder found (expected `token_embedding.weight` (Wan) or `encoder.block.0.layer.0.SelfAttention.q.weight` "
         "(Hugging Face / ComfyUI)); is this the text encoder file?");
  const std::string p = *prefix;
  // UMT5 gives every block its own relative-position table; classic T5 only block 0, shared by all.
  bool per_block = w->has(p + "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight") ||
                   !w->has(p + "encoder.block.1.layer.0.SelfAttention.q.weight");
  const std::string shared = p + "shared.weight";
  const bool has_shared = w->has(shared);
  Map map = [p, per_block, has_shared](const std::string& stored) -> std::optional<std::string> {
    std::string n = stored;
    if (!strip(n, p)) return std::nullopt;
    if (n == "shared.weight") return "token_embedding.weight";
    if (n == "encoder.embed_tokens.weight") return has_shared ? std::nullopt : std::optional<std::string>("token_embedding.weight");
    if (n == "encoder.final_layer_norm.weight") return "norm.weight";
    if (!per_block && n == "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
      return "pos_embedding.embedding.weight";
    return rename_block(n, "encoder.block.", "blocks.",
                        {{"layer.0.SelfAttention.q.weight", "attn.q.weight"},
                         {"layer.0.SelfAttention.k.weight", "attn.k.weight"},
                         {"layer.0.SelfAttention.v.weight", "attn.v.weight"},
                         {"layer.0.SelfAttention.o.weight", "attn.o.weight"},
                         {"layer.0.SelfAttention.relative_attention_bias.weight", "pos_embedding.embedding.weight"},
                         {"layer.0.layer_norm.weight", "norm1.weight"},
                         {"layer.1.DenseReluDense.wi_0.weight", "ffn.gate.0.weight"},
                         {"layer.1.DenseReluDense.wi_1.weight", "ffn.fc1.weight"},
                         {"layer.1.DenseReluDense.wo.weight", "ffn.fc2.weight"},
                         {"layer.1.layer_norm.weight", "norm2.weight"}});
  };
  return io::rename_weights(w, map, "T5 (Hugging Face names)");
}

std::shared_ptr<io::WeightStore> clip_official_view(std::shared_ptr<io::WeightStore> w) {
  if (w->has("visual.patch_embedding.weight")) return w;
  reject_scaled_fp8(*w);
  if (auto prefix = prefix_of(*w, "visual.conv1.weight")) {
    const std::string p = *prefix + "visual.";
    Map map = [p](const std::string& stored) -> std::optional<std::string> {
      std::string n = stored;
      if (!strip(n, p)) return std::nullopt;
      static const std::vector<std::pair<std::string, std::string>> top = {
          {"conv1.weight", "patch_embedding.weight"}, {"class_embedding", "cls_embedding"},
          {"positional_embedding", "pos_embedding"},  {"ln_pre.weight", "pre_norm.weight"},
          {"ln_pre.bias", "pre_norm.bias"},           {"ln_post.weight", "post_norm.weight"},
          {"ln_post.bias", "post_norm.bias"},         {"proj", "head"}};
      for (const auto& [from, to] : top)
        if (n == from) return "visual." + to;
      return rename_block(n, "transformer.resblocks.", "visual.transformer.",
                          {{"ln_1.weight", "norm1.weight"},
                           {"ln_1.bias", "norm1.bias"},
                           {"attn.in_proj_weight", "attn.to_qkv.weight"},
                           {"attn.in_proj_bias", "attn.to_qkv.bias"},
                           {"attn.out_proj.weight", "attn.proj.weight"},
                           {"attn.out_proj.bias", "attn.proj.bias"},
                           {"ln_2.weight", "norm2.weight"},
                           {"ln_2.bias", "norm2.bias"},
                           {"mlp.c_fc.weight", "mlp.0.weight"},
                           {"mlp.c_fc.bias", "mlp.0.bias"},
                           {"mlp.c_proj.weight", "mlp.2.weight"},
                           {"mlp.c_proj.bias", "mlp.2.bias"}});
    };
    return io::rename_weights(w, map, "CLIP vision (open_clip names)");
  }
  if (auto prefix = prefix_of(*w, "vision_model.embeddings.patch_embedding.weight")) {
    const std::string p = *prefix + "vision_model.";
    Map map = [p](const std::string& stored) -> std::optional<std::string> {
      std::string n = stored;
      if (!strip(n, p)) return std::nullopt;
      static const std::vector<std::pair<std::string, std::string>> top = {
          {"embeddings.patch_embedding.weight", "patch_embedding.weight"},
          {"embeddings.class_embedding", "cls_embedding"},
          {"embeddings.position_embedding.weight", "pos_embedding"},
          {"pre_layrnorm.weight", "pre_norm.weight"},
          {"pre_layrnorm.bias", "pre_norm.bias"},
          {"post_layernorm.weight", "post_norm.weight"},
          {"post_layernorm.bias", "post_norm.bias"}};
      for (const auto& [from, to] : top)
        if (n == from) return "visual." + to;
      std::vector<std::pair<std::string, std::string>> tails = {
          {"layer_norm1.weight", "norm1.weight"},         {"layer_norm1.bias", "norm1.bias"},
          {"self_attn.out_proj.weight", "attn.proj.weight"}, {"self_attn.out_proj.bias", "attn.proj.bias"},
          {"layer_norm2.weight", "norm2.weight"},         {"layer_norm2.bias", "norm2.bias"},
          {"mlp.fc1.weight", "mlp.0.weight"},             {"mlp.fc1.bias", "mlp.0.bias"},
          {"mlp.fc2.weight", "mlp.2.weight"},             {"mlp.fc2.bias", "mlp.2.bias"}};
      for (const char* s : {"q", "k", "v"})
        for (const char* t : {"weight", "bias"})
          tails.emplace_back(std::string("self_attn.") + s + "_proj." + t, std::string("attn.to_") + s + "." + t);
      return rename_block(n, "encoder.layers.", "visual.transformer.", tails);
    };
    return io::rename_weights(w, map, "CLIP vision (Hugging Face names)");
  }
  fail(ErrorKind::BadFile, w->source(),
       ": no CLIP vision tower found (expected `visual.patch_embedding.weight` (Wan / open-clip), `visual.conv1.weight` "
       "(open_clip) or `vision_model.embeddings.patch_embedding.weight` (Hugging Face)); is this the CLIP file?");
}

// ---- --config JSON

EncoderConfigJson::EncoderConfigJson(const std::string& path) : label_(path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::NotFound, "cannot open the config file ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > (1u << 20)) fail(ErrorKind::BadFile, path, ": config file over 1 MB");
  *this = parse(ss.str(), path);
}

EncoderConfigJson EncoderConfigJson::parse(const std::string& text, const std::string& label) {
  EncoderConfigJson c;
  c.label_ = label;
  try {
    c.j_ = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::InvalidArgument, label, ": not valid JSON (", e.what(), ")");
  }
  if (!c.j_.is_object()) fail(ErrorKind::InvalidArgument, label, ": the config must be a JSON object");
  return c;
}

const nlohmann::json* EncoderConfigJson::take(const std::string& key) {
  used_.insert(key);
  auto it = j_.find(key);
  return it == j_.end() || it->is_null() ? nullptr : &*it;
}

std::optional<int64_t> EncoderConfigJson::integer(const std::string& key) {
  const nlohmann::json* v = take(key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) fail(ErrorKind::InvalidArgument, label_, ": \"", key, "\" must be an integer, got ", v->dump());
  return v->get<int64_t>();
}

std::optional<double> EncoderConfigJson::number(const std::string& key) {
  const nlohmann::json* v = take(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) fail(ErrorKind::InvalidArgument, label_, ": \"", key, "\" must be a number, got ", v->dump());
  return v->get<double>();
}

std::optional<bool> EncoderConfigJson::boolean(const std::string& key) {
  const nlohmann::json* v = take(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) fail(ErrorKind::InvalidArgument, label_, ": \"", key, "\" must be true or false, got ", v->dump());
  return v->get<bool>();
}

std::optional<std::string> EncoderConfigJson::string(const std::string& key) {
  const nlohmann::json* v = take(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail(ErrorKind::InvalidArgument, label_, ": \"", key, "\" must be a string, got ", v->dump());
  return v->get<std::string>();
}

void EncoderConfigJson::ignore(const std::string& key) { used_.insert(key); }

void EncoderConfigJson::finish(const std::string& known_fields) const {
  for (auto it = j_.begin(); it != j_.end(); ++it)
    if (!used_.count(it.key()))
      fail(ErrorKind::InvalidArgument, label_, ": unknown config field \"", it.key(), "\" (known: ", known_fields, ")");
}

}  // namespace x2v::models::wan
