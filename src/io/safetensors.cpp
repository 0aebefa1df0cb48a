#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "io/atomic_file.h"
#include "io/utf8.h"

namespace x2v::io {

namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  fail(ErrorKind::BadFile, path, ": not a valid safetensors file: ", what,
       ". Re-download or re-convert the file.");
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Parse JSON refusing duplicate keys at any depth (nlohmann would keep the last silently).
json parse_header_json(const std::string& path, const char* begin, const char* end) {
  std::vector<std::set<std::string>> keys;
  std::string dup;
  json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (ev == json::parse_event_t::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (ev == json::parse_event_t::key && !keys.empty()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!keys.back().insert(k).second && dup.empty()) dup = k;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(begin, end, cb, /*allow_exceptions=*/true);
  } catch (const json::exception& e) {
    bad(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!dup.empty()) bad(path, "the header names \"" + dup + "\" twice");
  return j;
}

uint64_t as_u64(const std::string& path, const std::string& name, const json& v, const char* field) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    bad(path, "tensor \"" + name + "\": " + field + " must hold non-negative integers");
  return v.get<uint64_t>();
}

}  // namespace

SafeTensors SafeTensors::open(const std::string& path) { return parse(MappedFile::open(path)); }

SafeTensors SafeTensors::parse(std::shared_ptr<MappedFile> file) {
  const std::string& path = file->path();
  const uint8_t* p = file->data();
  const uint64_t size = file->size();
  if (size < 8) bad(path, "the file is " + std::to_string(size) + " bytes, too short for the 8-byte header length");
  const uint64_t n = read_u64_le(p);
  if (n > kMaxHeaderBytes)
    bad(path, "the header claims " + std::to_string(n) + " bytes (the limit is 100 MB)");
  if (n > size - 8)
    bad(path, "the header claims " + std::to_string(n) + " bytes but the file has only " +
                  std::to_string(size - 8) + " after the length (truncated?)");
  const char* hb = reinterpret_cast<const char*>(p + 8);
  const char* he = hb + n;
  if (!utf8_valid(hb, n)) bad(path, "the header is not UTF-8");
  const char* first = hb;
  while (first < he && (*first == ' ' || *first == '\t' || *first == '\n' || *first == '\r')) ++first;
  if (first == he || *first != '{') bad(path, "the header is not a JSON object");
  json j = parse_header_json(path, hb, he);
  if (!j.is_object()) bad(path, "the header is not a JSON object");

  SafeTensors st;
  st.file_ = file;
  st.data_start_ = 8 + n;
  const uint64_t data_size = size - 8 - n;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) bad(path, "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) bad(path, "__metadata__ entry \"" + m.key() + "\" is not a string");
        st.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) bad(path, "tensor \"" + name + "\" is not described by an object");
    for (auto f = v.begin(); f != v.end(); ++f)
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        bad(path, "tensor \"" + name + "\" has an unknown field \"" + f.key() + "\"");
    if (!v.contains("dtype") || !v["dtype"].is_string()) bad(path, "tensor \"" + name + "\" has no dtype string");
    if (!v.contains("shape") || !v["shape"].is_array()) bad(path, "tensor \"" + name + "\" has no shape array");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      bad(path, "tensor \"" + name + "\" needs data_offsets [begin, end]");
    TensorInfo ti;
    ti.name = name;
    const std::string dt = v["dtype"].get<std::string>();
    if (!dtype_from_safetensors(dt, &ti.dtype))
      bad(path, "tensor \"" + name + "\" has dtype \"" + dt + "\", which x2v does not read");
    const json& shape = v["shape"];
    if (shape.size() > static_cast<size_t>(kMaxRank))
      bad(path, "tensor \"" + name + "\" has rank " + std::to_string(shape.size()) + " (at most 8)");
    bool empty = false;
    unsigned __int128 nonzero = 1;  // an empty tensor's other dims must still make a sane shape
    for (const json& d : shape) {
      uint64_t dim = as_u64(path, name, d, "shape");
      if (dim > static_cast<uint64_t>(INT64_MAX)) bad(path, "tensor \"" + name + "\" has an absurd dimension");
      ti.shape.push_back(static_cast<int64_t>(dim));
      empty = empty || dim == 0;
      if (dim != 0) nonzero *= dim;
      if (nonzero > static_cast<uint64_t>(INT64_MAX))
        bad(path, "tensor \"" + name + "\" has shape " + shape.dump() + ", whose element count overflows");
    }
    // shape x dtype size, overflow-checked: anything past the data section is an error already.
    uint64_t bytes = 0;
    if (!empty) {
      unsigned __int128 b = dtype_size(ti.dtype);
      for (int64_t dim : ti.shape) {
        b *= static_cast<uint64_t>(dim);
        if (b > data_size)
          bad(path, "tensor \"" + name + "\" of shape " + shape.dump() + " is larger than the file");
      }
      bytes = static_cast<uint64_t>(b);
    }
    ti.begin = as_u64(path, name, v["data_offsets"][0], "data_offsets");
    ti.end = as_u64(path, name, v["data_offsets"][1], "data_offsets");
    if (ti.end < ti.begin) bad(path, "tensor \"" + name + "\" ends before it begins");
    if (ti.end - ti.begin != bytes)
      bad(path, "tensor \"" + name + "\" holds " + std::to_string(ti.end - ti.begin) + " bytes but " +
                    dt + shape.dump() + " needs " + std::to_string(bytes));
    st.tensors_.push_back(std::move(ti));
  }
  std::sort(st.tensors_.begin(), st.tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  for (const auto& t : st.tensors_) {
    if (t.begin != expect)
      bad(path, "tensor \"" + t.name + "\" starts at byte " + std::to_string(t.begin) + ", expected " +
                    std::to_string(expect) + (t.begin < expect ? " (overlapping tensors)" : " (a gap)"));
    expect = t.end;
  }
  if (expect != data_size)
    bad(path, "the tensors cover " + std::to_string(expect) + " bytes but the data section has " +
                  std::to_string(data_size) + (expect > data_size ? " (truncated file)" : " (trailing bytes)"));
  for (size_t i = 0; i < st.tensors_.size(); ++i) st.index_[st.tensors_[i].name] = i;
  return st;
}

const TensorInfo* SafeTensors::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Tensor SafeTensors::get(const std::string& name) const {
  const TensorInfo* ti = find(name);
  if (!ti) fail(ErrorKind::NotFound, path(), ": no tensor named \"", name, "\"");
  void* data = const_cast<uint8_t*>(file_->data() + data_start_ + ti->begin);
  // The format does not align tensors (only the reference writer's ordering does): a misaligned
  // one is copied rather than handed out as a pointer typed code would misuse.
  if (reinterpret_cast<uintptr_t>(data) % dtype_size(ti->dtype) != 0) {
    Tensor t = Tensor::empty(ti->shape, ti->dtype);
    std::memcpy(t.raw(), data, t.nbytes());
    return t;
  }
  return Tensor::wrap(data, ti->shape, ti->dtype, file_);
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  // Widest dtypes first (stable), as the reference writer does: with the 8-byte-aligned data
  // section every tensor is then aligned and readers can use it in place.
  std::vector<const std::pair<std::string, Tensor>*> order;
  for (const auto& nt : tensors) order.push_back(&nt);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return dtype_size(a->second.dtype()) > dtype_size(b->second.dtype());
  });
  std::set<std::string> seen;
  uint64_t off = 0;
  for (const auto* nt : order) {
    const auto& [name, t] = *nt;
    if (!t.defined()) fail(ErrorKind::InvalidArgument, "write_safetensors: tensor ", name, " is undefined");
    if (!utf8_valid(name.data(), name.size()))
      fail(ErrorKind::InvalidArgument, "write_safetensors: tensor name is not UTF-8: ", name);
    if (!seen.insert(name).second) fail(ErrorKind::InvalidArgument, "write_safetensors: duplicate name ", name);
    if (name == "__metadata__") fail(ErrorKind::InvalidArgument, "write_safetensors: reserved name __metadata__");
    h[name] = {{"dtype", dtype_to_safetensors(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {off, off + t.nbytes()}}};
    off += t.nbytes();
  }
  std::string hs = h.dump();
  while ((hs.size() + 8) % 8) hs.push_back(' ');  // data section 8-byte aligned, as the reference writer does
  AtomicFile out(path);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(hs.size()) >> (8 * i));
  out.write(len, 8);
  out.write(hs.data(), hs.size());
  for (const auto* nt : order) {
    const Tensor& t = nt->second;
    Tensor c = t.is_cpu() ? t : t.to(Device::CPU);
    out.write(c.raw(), c.nbytes());
  }
  out.commit();
}

}  // namespace x2v::io
