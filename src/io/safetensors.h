// safetensors: strict reader (mmap, zero-copy views) and writer.
//
// The reader validates the whole header before anything is sized from it (docs: peers-aesthetics
// C1): header ≤ 100 MB, UTF-8 JSON object, no duplicate names, known dtypes, rank ≤ 8, shape ×
// dtype size overflow-checked and equal to the byte range, byte ranges contiguous from 0 to the
// end of the file (no gaps, overlaps or trailing bytes), `__metadata__` a flat string map.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/mapped_file.h"

namespace x2v::io {

struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0;  // byte offsets relative to the data section
  uint64_t end = 0;
};

class SafeTensors {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;
  static constexpr int kMaxRank = 8;

  static SafeTensors open(const std::string& path);
  static SafeTensors parse(std::shared_ptr<MappedFile> file);

  const std::string& path() const { return file_->path(); }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in data order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;
  bool has(const std::string& name) const { return find(name) != nullptr; }
  // Zero-copy CPU view of the stored bytes (dtype as stored). NotFound if absent.
  Tensor get(const std::string& name) const;

 private:
  std::shared_ptr<MappedFile> file_;
  uint64_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Write tensors (any device; copied to the host) to `path` atomically: a temporary file in the
// same folder, renamed into place only when complete.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace x2v::io
