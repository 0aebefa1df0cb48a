#include "io/pth.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "io/pickle.h"
#include "io/zip.h"

namespace x2v::io {

namespace {

constexpr uint64_t kMaxPickleBytes = 1ull << 30;

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  fail(ErrorKind::BadFile, path, ": not a valid PyTorch checkpoint: ", what,
       ". Re-download the file, or convert it to safetensors with a trusted tool.");
}

struct PthTensor {
  DType dtype;
  Shape shape;
  std::vector<int64_t> stride;
  uint64_t file_offset = 0;  // of the first element

  bool contiguous = false;
};

bool is_contiguous(const Shape& size, const std::vector<int64_t>& stride) {
  int64_t expect = 1;
  for (size_t i = size.size(); i-- > 0;) {
    if (size[i] == 0) return true;
    if (size[i] != 1 && stride[i] != expect) return false;
    expect *= size[i];
  }
  return true;
}

class PthStore final : public WeightStore {
 public:
  PthStore(ZipArchive zip, std::map<std::string, PthTensor> tensors)
      : zip_(std::move(zip)), tensors_(std::move(tensors)) {}
  std::string format() const override { return "pytorch zip"; }
  std::string source() const override { return zip_.path(); }
  std::vector<std::string> names() const override {
    std::vector<std::string> n;
    n.reserve(tensors_.size());
    for (const auto& [k, v] : tensors_) n.push_back(k);
    return n;
  }
  std::optional<TensorMeta> find(const std::string& name) const override {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) return std::nullopt;
    return TensorMeta{it->second.dtype, it->second.shape};
  }
  Tensor load(const std::string& name) const override {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) fail(ErrorKind::NotFound, source(), ": no tensor named \"", name, "\"");
    const PthTensor& t = it->second;
    const size_t es = dtype_size(t.dtype);
    const uint8_t* base = zip_.file()->data() + t.file_offset;
    // Zero-copy only where the bytes already form an aligned contiguous array.
    if (t.contiguous && reinterpret_cast<uintptr_t>(base) % es == 0)
      return Tensor::wrap(const_cast<uint8_t*>(base), t.shape, t.dtype, zip_.file());
    Tensor out = Tensor::empty(t.shape, t.dtype);
    if (out.numel() == 0) return out;
    uint8_t* dst = static_cast<uint8_t*>(out.raw());
    if (t.contiguous) {
      std::memcpy(dst, base, out.nbytes());
      return out;
    }
    // Strided gather with an odometer over all but the last dimension.
    const size_t rank = t.shape.size();
    std::vector<int64_t> idx(rank, 0);
    const int64_t inner = t.shape[rank - 1], inner_stride = t.stride[rank - 1];
    const int64_t rows = out.numel() / inner;
    for (int64_t r = 0; r < rows; ++r) {
      int64_t off = 0;
      for (size_t d = 0; d + 1 < rank; ++d) off += idx[d] * t.stride[d];
      for (int64_t j = 0; j < inner; ++j) {
        std::memcpy(dst, base + static_cast<size_t>(off + j * inner_stride) * es, es);
        dst += es;
      }
      for (size_t d = rank - 1; d-- > 0;) {
        if (++idx[d] < t.shape[d]) break;
        idx[d] = 0;
      }
    }
    return out;
  }

 private:
  ZipArchive zip_;
  std::map<std::string, PthTensor> tensors_;
};

const pickle::Value* dict_get(const pickle::Value& d, const std::string& key) {
  for (const auto& [k, v] : d.dict)
    if (k->type == pickle::Value::Type::String && k->s == key) return v.get();
  return nullptr;
}

}  // namespace

std::unique_ptr<WeightStore> open_pth(std::shared_ptr<MappedFile> file) {
  const std::string& path = file->path();
  ZipArchive zip = ZipArchive::parse(file);
  if (zip.entries().empty()) bad(path, "the archive is empty");
  // torch.save puts everything under one folder, named after the file when it was saved.
  const std::string& first = zip.entries().front().name;
  const size_t slash = first.find('/');
  if (slash == std::string::npos || slash == 0) bad(path, "entry \"" + first + "\" is not inside the archive's folder");
  const std::string root = first.substr(0, slash + 1);
  for (const auto& e : zip.entries())
    if (e.name.compare(0, root.size(), root) != 0)
      bad(path, "entry \"" + e.name + "\" is outside the archive's folder \"" + root + "\"");

  if (const ZipEntry* bo = zip.find(root + "byteorder")) {
    const std::string order(reinterpret_cast<const char*>(zip.bytes(*bo)), static_cast<size_t>(std::min<uint64_t>(bo->size, 16)));
    if (order == "big")
      fail(ErrorKind::Unsupported, path, ": a big-endian checkpoint; load and save it again on a little-endian machine");
    if (order != "little") bad(path, "the byteorder record says \"" + order + "\"");
  }
  const ZipEntry* pkl = zip.find(root + "data.pkl");
  if (!pkl) bad(path, "there is no " + root + "data.pkl (is this a PyTorch checkpoint from torch.save?)");
  if (pkl->size > kMaxPickleBytes) bad(path, "data.pkl is " + std::to_string(pkl->size) + " bytes (the limit is 1 GB)");
  zip.verify_crc(*pkl);
  pickle::ValuePtr top =
      pickle::unpickle(zip.bytes(*pkl), static_cast<size_t>(pkl->size), path + ": " + pkl->name);

  using Type = pickle::Value::Type;
  if (top->type != Type::Dict)
    bad(path, std::string("the checkpoint holds a ") + pickle::type_name(top->type) + ", not a state dict");
  const pickle::Value* sd = top.get();
  if (const pickle::Value* inner = dict_get(*top, "state_dict"); inner && inner->type == Type::Dict) sd = inner;

  std::map<std::string, PthTensor> tensors;
  for (const auto& [k, v] : sd->dict) {
    if (k->type != Type::String) bad(path, std::string("the state dict has a ") + pickle::type_name(k->type) + " key");
    const std::string& name = k->s;
    if (v->type != Type::Tensor)
      bad(path, "entry \"" + name + "\" is a " + pickle::type_name(v->type) + ", not a tensor (not a plain state dict)");
    const pickle::TensorRef& tr = v->tensor;
    const pickle::StorageRef& st = *tr.storage;
    PthTensor t;
    t.dtype = st.dtype;
    t.shape = tr.size;
    t.stride = tr.stride;
    const ZipEntry* blob = zip.find(root + "data/" + st.key);
    if (!blob)
      bad(path, "tensor \"" + name + "\" lives in storage " + st.key + ", but the archive has no " + root + "data/" + st.key);
    const unsigned __int128 need = static_cast<unsigned __int128>(static_cast<uint64_t>(st.numel)) * dtype_size(st.dtype);
    if (need != blob->size)
      bad(path, "storage " + st.key + " should hold " + std::to_string(st.numel) + " elements of torch." + st.torch_type +
                    " but its entry has " + std::to_string(blob->size) + " bytes (truncated?)");
    // The unpickler checked the view against the storage's element count; that count now matches the blob.
    // An empty view reads nothing, so its offset is irrelevant (and unchecked).
    t.file_offset = blob->offset + (shape_numel(t.shape) == 0 ? 0 : static_cast<uint64_t>(tr.offset) * dtype_size(st.dtype));
    t.contiguous = is_contiguous(t.shape, t.stride);
    if (!tensors.emplace(name, std::move(t)).second) bad(path, "the state dict names \"" + name + "\" twice");
  }
  return std::make_unique<PthStore>(std::move(zip), std::move(tensors));
}

}  // namespace x2v::io
