// WeightStore: named tensors from a checkpoint, whatever its container (one safetensors file, a
// sharded safetensors index, a PyTorch .pth zip). Models read their weights only through this.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace x2v::io {

struct TensorMeta {
  DType dtype;
  Shape shape;
};

class WeightStore {
 public:
  virtual ~WeightStore() = default;
  virtual std::string format() const = 0;  // "safetensors", "safetensors (3 shards)", "pytorch zip"
  virtual std::string source() const = 0;  // the path it was opened from
  virtual std::vector<std::string> names() const = 0;  // sorted
  virtual std::optional<TensorMeta> find(const std::string& name) const = 0;
  // The stored tensor on the host in its stored dtype (a zero-copy view where the format allows).
  virtual Tensor load(const std::string& name) const = 0;

  bool has(const std::string& name) const { return find(name).has_value(); }
  TensorMeta meta(const std::string& name) const;  // NotFound naming the file if absent
  // load() checked against an expected shape: a clear BadFile error naming tensor, file and shapes.
  Tensor load(const std::string& name, const Shape& expect) const;
};

// Open by content: a safetensors file, a `*.safetensors.index.json`, or a PyTorch zip checkpoint.
std::unique_ptr<WeightStore> open_weights(const std::string& path);
// A `*.safetensors.index.json` already in memory; its shards are looked up beside index->path().
class MappedFile;
std::unique_ptr<WeightStore> open_safetensors_index(std::shared_ptr<MappedFile> index);

// A view of another store under different names: `map` turns a stored name into the name the
// model asks for (or nullopt to hide it). Two stored names mapping to one is an error.
std::unique_ptr<WeightStore> rename_weights(std::shared_ptr<WeightStore> base,
                                            const std::function<std::optional<std::string>(const std::string&)>& map,
                                            std::string label);

}  // namespace x2v::io
