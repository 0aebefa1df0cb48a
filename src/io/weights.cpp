#include "io/weights.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/mapped_file.h"
#include "io/pth.h"
#include "io/safetensors.h"

namespace x2v::io {

namespace fs = std::filesystem;

TensorMeta WeightStore::meta(const std::string& name) const {
  auto m = find(name);
  if (!m) fail(ErrorKind::NotFound, source(), ": tensor \"", name, "\" is missing (is this the right file for this model?)");
  return *m;
}

Tensor WeightStore::load(const std::string& name, const Shape& expect) const {
  TensorMeta m = meta(name);
  if (m.shape != expect)
    fail(ErrorKind::BadFile, source(), ": tensor \"", name, "\" has shape ", shape_str(m.shape), ", expected ",
         shape_str(expect), " (the file does not match the model configuration)");
  return load(name);
}

namespace {

class SafetensorsStore final : public WeightStore {
 public:
  explicit SafetensorsStore(SafeTensors st) : st_(std::move(st)) {}
  std::string format() const override { return "safetensors"; }
  std::string source() const override { return st_.path(); }
  std::vector<std::string> names() const override {
    std::vector<std::string> n;
    for (const auto& t : st_.tensors()) n.push_back(t.name);
    std::sort(n.begin(), n.end());
    return n;
  }
  std::optional<TensorMeta> find(const std::string& name) const override {
    const TensorInfo* t = st_.find(name);
    if (!t) return std::nullopt;
    return TensorMeta{t->dtype, t->shape};
  }
  Tensor load(const std::string& name) const override { return st_.get(name); }

 private:
  SafeTensors st_;
};

class ShardedStore final : public WeightStore {
 public:
  explicit ShardedStore(const std::shared_ptr<MappedFile>& index) : path_(index->path()) {
    const std::string& index_path = path_;
    if (index->size() > 100'000'000) fail(ErrorKind::BadFile, index_path, ": index file over 100 MB");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(index->data(), index->data() + index->size());
    } catch (const nlohmann::json::exception& e) {
      fail(ErrorKind::BadFile, index_path, ": not valid JSON (", e.what(), ")");
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      fail(ErrorKind::BadFile, index_path, ": no \"weight_map\" object: not a safetensors index");
    fs::path dir = fs::path(index_path).parent_path();
    std::map<std::string, std::string> shard_of;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail(ErrorKind::BadFile, index_path, ": weight_map[\"", it.key(), "\"] is not a file name");
      std::string shard = it.value().get<std::string>();
      fs::path sp(shard);
      bool escapes = sp.is_absolute() || shard.empty();
      for (const auto& part : sp)
        if (part == "..") escapes = true;
      if (escapes)
        fail(ErrorKind::BadFile, index_path, ": shard path \"", shard,
             "\" is absolute or leaves the model folder; shards must sit beside the index");
      shard_of[it.key()] = shard;
    }
    std::map<std::string, size_t> shard_index;
    for (const auto& [name, shard] : shard_of) {
      if (!shard_index.count(shard)) {
        shard_index[shard] = shards_.size();
        fs::path sp = dir / shard;
        if (!fs::exists(sp))
          fail(ErrorKind::NotFound, index_path, " lists shard ", shard, ", which is not in ", dir.string(),
               " (incomplete download?)");
        shards_.push_back(SafeTensors::open(sp.string()));
      }
      const SafeTensors& st = shards_[shard_index[shard]];
      if (!st.has(name))
        fail(ErrorKind::BadFile, index_path, " says tensor \"", name, "\" is in ", shard, ", but it is not");
      where_[name] = shard_index[shard];
    }
    // A tensor in a shard but not in the index would be silently ignored: refuse instead.
    for (const auto& st : shards_)
      for (const auto& t : st.tensors())
        if (!where_.count(t.name))
          fail(ErrorKind::BadFile, st.path(), " holds tensor \"", t.name, "\", which the index does not list");
  }
  std::string format() const override {
    return "safetensors index (" + std::to_string(shards_.size()) + " shards)";
  }
  std::string source() const override { return path_; }
  std::vector<std::string> names() const override {
    std::vector<std::string> n;
    for (const auto& [k, v] : where_) n.push_back(k);
    return n;
  }
  std::optional<TensorMeta> find(const std::string& name) const override {
    auto it = where_.find(name);
    if (it == where_.end()) return std::nullopt;
    const TensorInfo* t = shards_[it->second].find(name);
    return TensorMeta{t->dtype, t->shape};
  }
  Tensor load(const std::string& name) const override {
    auto it = where_.find(name);
    if (it == where_.end()) fail(ErrorKind::NotFound, path_, ": no tensor \"", name, "\"");
    return shards_[it->second].get(name);
  }

 private:
  std::string path_;
  std::vector<SafeTensors> shards_;
  std::map<std::string, size_t> where_;
};

class RenamedStore final : public WeightStore {
 public:
  RenamedStore(std::shared_ptr<WeightStore> base,
               const std::function<std::optional<std::string>(const std::string&)>& map, std::string label)
      : base_(std::move(base)), label_(std::move(label)) {
    for (const auto& n : base_->names()) {
      auto m = map(n);
      if (!m) continue;
      if (!to_base_.emplace(*m, n).second)
        fail(ErrorKind::BadFile, base_->source(), ": tensors \"", to_base_[*m], "\" and \"", n,
             "\" both stand for \"", *m, "\"");
    }
  }
  std::string format() const override { return base_->format() + ", " + label_; }
  std::string source() const override { return base_->source(); }
  std::vector<std::string> names() const override {
    std::vector<std::string> n;
    for (const auto& [k, v] : to_base_) n.push_back(k);
    return n;
  }
  std::optional<TensorMeta> find(const std::string& name) const override {
    auto it = to_base_.find(name);
    return it == to_base_.end() ? std::nullopt : base_->find(it->second);
  }
  Tensor load(const std::string& name) const override {
    auto it = to_base_.find(name);
    if (it == to_base_.end()) fail(ErrorKind::NotFound, source(), ": no tensor \"", name, "\"");
    return base_->load(it->second);
  }

 private:
  std::shared_ptr<WeightStore> base_;
  std::string label_;
  std::map<std::string, std::string> to_base_;
};

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

}  // namespace

std::unique_ptr<WeightStore> open_weights(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    fail(ErrorKind::InvalidArgument, path, " is a folder; give a weight file (or use --model-dir where a model folder is wanted)");
  if (!fs::exists(path, ec)) fail(ErrorKind::NotFound, "no such file: ", path);
  if (ends_with(path, ".json")) return open_safetensors_index(MappedFile::open(path));
  auto file = MappedFile::open(path);
  // PyTorch zip checkpoints start with a local zip header; safetensors with a little-endian length.
  if (file->size() >= 4 && file->data()[0] == 'P' && file->data()[1] == 'K' && file->data()[2] == 3 &&
      file->data()[3] == 4)
    return open_pth(file);
  return std::make_unique<SafetensorsStore>(SafeTensors::parse(file));
}

std::unique_ptr<WeightStore> open_safetensors_index(std::shared_ptr<MappedFile> index) {
  return std::make_unique<ShardedStore>(index);
}

std::unique_ptr<WeightStore> rename_weights(std::shared_ptr<WeightStore> base,
                                            const std::function<std::optional<std::string>(const std::string&)>& map,
                                            std::string label) {
  return std::make_unique<RenamedStore>(std::move(base), map, std::move(label));
}

}  // namespace x2v::io
