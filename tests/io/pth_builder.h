// Builds PyTorch-style checkpoints byte by byte, for tests and fuzz seeds: a minimal zip writer
// (stored entries, optional zip64 records, data aligned like torch.save's) and a pickle writer
// that emits what torch.save(state_dict) emits, or anything else a test wants to feed the loader.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace x2v::test {

inline void put_le(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

struct ZipItem {
  std::string name;
  std::string data;
  uint16_t method = 0;  // 8 = deflate (only the header says so: the bytes stay as given)
};

// zip64: write every size and offset through zip64 extra fields and end records.
inline std::string make_zip(const std::vector<ZipItem>& items, bool zip64 = false) {
  std::string out, cd;
  for (const auto& it : items) {
    const uint32_t crc = static_cast<uint32_t>(
        crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(it.data.data()), static_cast<uInt>(it.data.size())));
    const uint64_t off = out.size();
    // Pad the local extra field so the data starts on a 64-byte boundary, as torch.save does.
    const size_t fixed = 30 + it.name.size() + (zip64 ? 20 : 0);
    size_t pad = (64 - (off + fixed + 4) % 64) % 64;
    std::string lextra;
    if (zip64) {
      put_le(lextra, 1, 2);
      put_le(lextra, 16, 2);
      put_le(lextra, it.data.size(), 8);
      put_le(lextra, it.data.size(), 8);
    }
    put_le(lextra, 0x4246, 2);
    put_le(lextra, pad, 2);
    lextra.append(pad, 'Z');
    put_le(out, 0x04034b50, 4);
    put_le(out, zip64 ? 45 : 20, 2);
    put_le(out, 0, 2);
    put_le(out, it.method, 2);
    put_le(out, 0, 4);  // time, date
    put_le(out, crc, 4);
    put_le(out, zip64 ? 0xffffffffu : it.data.size(), 4);
    put_le(out, zip64 ? 0xffffffffu : it.data.size(), 4);
    put_le(out, it.name.size(), 2);
    put_le(out, lextra.size(), 2);
    out += it.name;
    out += lextra;
    out += it.data;

    std::string cextra;
    if (zip64) {
      put_le(cextra, 1, 2);
      put_le(cextra, 24, 2);
      put_le(cextra, it.data.size(), 8);
      put_le(cextra, it.data.size(), 8);
      put_le(cextra, off, 8);
    }
    put_le(cd, 0x02014b50, 4);
    put_le(cd, zip64 ? 45 : 20, 2);
    put_le(cd, zip64 ? 45 : 20, 2);
    put_le(cd, 0, 2);
    put_le(cd, it.method, 2);
    put_le(cd, 0, 4);
    put_le(cd, crc, 4);
    put_le(cd, zip64 ? 0xffffffffu : it.data.size(), 4);
    put_le(cd, zip64 ? 0xffffffffu : it.data.size(), 4);
    put_le(cd, it.name.size(), 2);
    put_le(cd, cextra.size(), 2);
    put_le(cd, 0, 2);  // comment
    put_le(cd, 0, 2);  // disk
    put_le(cd, 0, 2);  // internal attributes
    put_le(cd, 0, 4);  // external attributes
    put_le(cd, zip64 ? 0xffffffffu : off, 4);
    cd += it.name;
    cd += cextra;
  }
  const uint64_t cd_off = out.size();
  out += cd;
  if (zip64) {
    const uint64_t z64 = out.size();
    put_le(out, 0x06064b50, 4);
    put_le(out, 44, 8);
    put_le(out, 45, 2);
    put_le(out, 45, 2);
    put_le(out, 0, 4);
    put_le(out, 0, 4);
    put_le(out, items.size(), 8);
    put_le(out, items.size(), 8);
    put_le(out, cd.size(), 8);
    put_le(out, cd_off, 8);
    put_le(out, 0x07064b50, 4);
    put_le(out, 0, 4);
    put_le(out, z64, 8);
    put_le(out, 1, 4);
  }
  put_le(out, 0x06054b50, 4);
  put_le(out, zip64 ? 0xffff : 0, 2);
  put_le(out, zip64 ? 0xffff : 0, 2);
  put_le(out, zip64 ? 0xffff : items.size(), 2);
  put_le(out, zip64 ? 0xffff : items.size(), 2);
  put_le(out, zip64 ? 0xffffffffu : cd.size(), 4);
  put_le(out, zip64 ? 0xffffffffu : cd_off, 4);
  put_le(out, 0, 2);
  return out;
}

// Emits pickle opcodes; names follow pickletools.
class Pickle {
 public:
  std::string bytes;

  Pickle& op(uint8_t c) {
    bytes.push_back(static_cast<char>(c));
    return *this;
  }
  Pickle& raw(const std::string& s) {
    bytes += s;
    return *this;
  }
  Pickle& proto(int v = 2) { return op(0x80).op(static_cast<uint8_t>(v)); }
  Pickle& mark() { return op('('); }
  Pickle& stop() { return op('.'); }
  Pickle& str(const std::string& s) {
    op('X');
    put_le(bytes, s.size(), 4);
    return raw(s);
  }
  Pickle& integer(int64_t v) {
    if (v >= 0 && v < 256) return op('K').op(static_cast<uint8_t>(v));
    if (v >= 0 && v < 65536) {
      op('M');
      put_le(bytes, static_cast<uint64_t>(v), 2);
      return *this;
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      put_le(bytes, static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
      return *this;
    }
    op(0x8a).op(8);
    put_le(bytes, static_cast<uint64_t>(v), 8);
    return *this;
  }
  Pickle& boolean(bool b) { return op(b ? 0x88 : 0x89); }
  Pickle& none() { return op('N'); }
  Pickle& global(const std::string& module, const std::string& name) {
    return op('c').raw(module + "\n" + name + "\n");
  }
  Pickle& empty_dict() { return op('}'); }
  Pickle& empty_tuple() { return op(')'); }
  Pickle& tuple() { return op('t'); }
  Pickle& setitems() { return op('u'); }
  Pickle& setitem() { return op('s'); }
  Pickle& reduce() { return op('R'); }
  Pickle& build() { return op('b'); }
  Pickle& binpersid() { return op('Q'); }
  Pickle& binput(uint8_t i) { return op('q').op(i); }
  Pickle& binget(uint8_t i) { return op('h').op(i); }
  Pickle& ints(const std::vector<int64_t>& v) {
    mark();
    for (int64_t x : v) integer(x);
    return tuple();
  }
  Pickle& ordered_dict() { return global("collections", "OrderedDict").empty_tuple().reduce(); }
};

struct FakeTensor {
  std::string name;
  std::string storage_type;  // "FloatStorage", ...
  std::string key;
  int64_t storage_numel = 0;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};

// The value torch.save writes for one tensor: _rebuild_tensor_v2((persistent storage), offset, size, stride, False, OrderedDict()).
inline void tensor_value(Pickle& p, const FakeTensor& t) {
  p.global("torch._utils", "_rebuild_tensor_v2").mark();
  p.mark().str("storage").global("torch", t.storage_type).str(t.key).str("cpu").integer(t.storage_numel).tuple().binpersid();
  p.integer(t.offset).ints(t.size).ints(t.stride).boolean(false).ordered_dict().tuple().reduce();
}

// A state dict as torch.save writes it (an OrderedDict with `_metadata` set by BUILD); wrapped in
// {"state_dict": ..., "epoch": 3} when `wrap`.
inline std::string state_dict_pickle(const std::vector<FakeTensor>& tensors, bool wrap = false) {
  Pickle p;
  p.proto();
  if (wrap) p.empty_dict().mark().str("state_dict");
  p.ordered_dict().mark();
  for (const auto& t : tensors) {
    p.str(t.name);
    tensor_value(p, t);
  }
  p.setitems();
  p.empty_dict().str("_metadata").ordered_dict().setitem().build();
  if (wrap) p.str("epoch").integer(3).setitems();
  return p.stop().bytes;
}

// A checkpoint archive: `<root>/data.pkl`, `<root>/data/<key>` for each storage, byteorder, version.
inline std::string make_pth(const std::string& pickle, const std::map<std::string, std::string>& storages,
                            bool zip64 = false, const std::string& root = "archive") {
  std::vector<ZipItem> items;
  items.push_back({root + "/data.pkl", pickle});
  items.push_back({root + "/byteorder", "little"});
  for (const auto& [key, data] : storages) items.push_back({root + "/data/" + key, data});
  items.push_back({root + "/version", "3\n"});
  return make_zip(items, zip64);
}

template <class T>
std::string raw_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

}  // namespace x2v::test
