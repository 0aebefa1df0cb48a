#include "io/zip.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace x2v::io {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22, kLocatorSize = 20, kEnd64Size = 56, kCentralSize = 46, kLocalSize = 30;

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  fail(ErrorKind::BadFile, path, ": not a valid PyTorch checkpoint (zip archive): ", what,
       ". Re-download the file, or convert it to safetensors with a trusted tool.");
}

// Little-endian reads from a range already known to be inside the file.
uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t rd64(const uint8_t* p) { return static_cast<uint64_t>(rd32(p)) | (static_cast<uint64_t>(rd32(p + 4)) << 32); }

// a + b <= limit, without overflowing.
bool fits(uint64_t a, uint64_t b, uint64_t limit) { return a <= limit && b <= limit - a; }

struct EndRecord {
  uint64_t entries = 0, cd_size = 0, cd_offset = 0;
  uint64_t cd_limit = 0;  // where the central directory must end (the first end record)
};

EndRecord read_end(const std::string& path, const uint8_t* d, uint64_t size) {
  if (size < kEndSize) bad(path, "the file is " + std::to_string(size) + " bytes, too short to be a zip archive");
  // The end record sits at the very end, followed only by its comment; the comment may itself
  // contain the signature, so take the candidate whose comment length reaches exactly to the end.
  const uint64_t lowest = size - kEndSize > 0xffff ? size - kEndSize - 0xffff : 0;
  uint64_t pos = size - kEndSize;
  bool found = false;
  for (;; --pos) {
    if (rd32(d + pos) == kEndSig && rd16(d + pos + 20) == size - pos - kEndSize) {
      found = true;
      break;
    }
    if (pos == lowest) break;
  }
  if (!found) bad(path, "no end-of-central-directory record (truncated file, or trailing bytes after the archive)");
  const uint8_t* e = d + pos;
  EndRecord r;
  const uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6), n_disk = rd16(e + 8), n_total = rd16(e + 10);
  const uint32_t cd_size = rd32(e + 12), cd_offset = rd32(e + 16);
  r.cd_limit = pos;
  const bool has_locator = pos >= kLocatorSize && rd32(d + pos - kLocatorSize) == kEnd64LocatorSig;
  if (!has_locator) {
    if (disk == 0xffff || cd_disk == 0xffff || n_disk == 0xffff || n_total == 0xffff || cd_size == 0xffffffffu ||
        cd_offset == 0xffffffffu)
      bad(path, "the end record points to zip64 fields but there is no zip64 locator");
    if (disk != 0 || cd_disk != 0 || n_disk != n_total) bad(path, "multi-disk archives are not supported");
    r.entries = n_total;
    r.cd_size = cd_size;
    r.cd_offset = cd_offset;
    return r;
  }
  const uint8_t* loc = d + pos - kLocatorSize;
  const uint64_t e64 = rd64(loc + 8);
  if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1) bad(path, "multi-disk archives are not supported");
  if (!fits(e64, kEnd64Size, pos - kLocatorSize)) bad(path, "the zip64 end record lies outside the file");
  const uint8_t* z = d + e64;
  if (rd32(z) != kEnd64Sig) bad(path, "the zip64 locator does not point to a zip64 end record");
  const uint64_t rec = rd64(z + 4);  // size of the rest of the record
  if (rec < kEnd64Size - 12 || !fits(e64 + 12, rec, pos - kLocatorSize))
    bad(path, "the zip64 end record has an impossible size");
  if (rd32(z + 16) != 0 || rd32(z + 20) != 0 || rd64(z + 24) != rd64(z + 32))
    bad(path, "multi-disk archives are not supported");
  r.entries = rd64(z + 32);
  r.cd_size = rd64(z + 40);
  r.cd_offset = rd64(z + 48);
  r.cd_limit = e64;
  return r;
}

}  // namespace

ZipArchive ZipArchive::parse(std::shared_ptr<MappedFile> file) {
  const std::string& path = file->path();
  const uint8_t* d = file->data();
  const uint64_t size = file->size();
  const EndRecord end = read_end(path, d, size);
  if (!fits(end.cd_offset, end.cd_size, end.cd_limit))
    bad(path, "the central directory (offset " + std::to_string(end.cd_offset) + ", " +
                  std::to_string(end.cd_size) + " bytes) runs past its end record");
  if (end.entries > kMaxEntries) bad(path, "the archive claims " + std::to_string(end.entries) + " entries");
  if (end.entries * kCentralSize > end.cd_size)
    bad(path, "the central directory is too small for its " + std::to_string(end.entries) + " entries");

  ZipArchive z;
  z.file_ = file;
  z.entries_.reserve(static_cast<size_t>(end.entries));
  struct Span {
    uint64_t begin, end;
    size_t entry;
  };
  std::vector<Span> spans;
  const uint64_t cd_end = end.cd_offset + end.cd_size;
  uint64_t p = end.cd_offset;
  for (uint64_t i = 0; i < end.entries; ++i) {
    const std::string where = "central directory entry " + std::to_string(i);
    if (!fits(p, kCentralSize, cd_end) || rd32(d + p) != kCentralSig)
      bad(path, where + " is missing or damaged (bad central directory)");
    const uint8_t* c = d + p;
    const uint16_t flags = rd16(c + 8), method = rd16(c + 10);
    const uint32_t crc = rd32(c + 16);
    uint64_t csize = rd32(c + 20), usize = rd32(c + 24);
    const uint16_t nlen = rd16(c + 28), elen = rd16(c + 30), clen = rd16(c + 32);
    uint64_t disk = rd16(c + 34);
    uint64_t local = rd32(c + 42);
    if (!fits(p + kCentralSize, uint64_t{nlen} + elen + clen, cd_end)) bad(path, where + " runs past the central directory");
    ZipEntry e;
    e.name.assign(reinterpret_cast<const char*>(c + kCentralSize), nlen);
    if (e.name.empty() || e.name.find('\0') != std::string::npos) bad(path, where + " has an empty or invalid name");
    // zip64 extra field: the 64-bit values replace, in this order, exactly the fields saturated to all-ones.
    const uint8_t* x = c + kCentralSize + nlen;
    const uint8_t* xe = x + elen;
    while (x != xe) {
      if (xe - x < 4) bad(path, "entry \"" + e.name + "\" has a truncated extra field");
      const uint16_t id = rd16(x), len = rd16(x + 2);
      if (len > xe - x - 4) bad(path, "entry \"" + e.name + "\" has an extra field past its end");
      if (id == 0x0001) {
        const uint8_t* q = x + 4;
        const uint8_t* qe = q + len;
        auto take = [&](uint64_t* v, int bytes) {
          if (qe - q < bytes) bad(path, "entry \"" + e.name + "\" has a truncated zip64 field");
          *v = bytes == 8 ? rd64(q) : rd32(q);
          q += bytes;
        };
        if (usize == 0xffffffffu) take(&usize, 8);
        if (csize == 0xffffffffu) take(&csize, 8);
        if (local == 0xffffffffu) take(&local, 8);
        if (disk == 0xffff) take(&disk, 4);
      }
      x += 4 + len;
    }
    if (flags & 0x0041 || flags & 0x2000)
      bad(path, "entry \"" + e.name + "\" is encrypted");
    if (method != 0)
      fail(ErrorKind::BadFile, path, ": entry \"", e.name, "\" is compressed (zip method ", method,
           "); x2v reads only the uncompressed archives torch.save writes. Re-save it with torch.save, or "
           "convert it to safetensors");
    if (csize != usize)
      bad(path, "stored entry \"" + e.name + "\" has different compressed and uncompressed sizes");
    if (disk != 0) bad(path, "multi-disk archives are not supported");
    // The local header repeats the name; the data follows its own (possibly different) extra field.
    if (!fits(local, kLocalSize, end.cd_offset) || rd32(d + local) != kLocalSig)
      bad(path, "entry \"" + e.name + "\" points to a missing local header");
    const uint8_t* l = d + local;
    const uint16_t lnlen = rd16(l + 26), lelen = rd16(l + 28);
    if (!fits(local + kLocalSize, uint64_t{lnlen} + lelen, end.cd_offset))
      bad(path, "the local header of \"" + e.name + "\" runs into the central directory");
    if (lnlen != nlen || std::memcmp(l + kLocalSize, e.name.data(), nlen) != 0)
      bad(path, "the local header of \"" + e.name + "\" names a different file");
    if (rd16(l + 8) != method) bad(path, "the local header of \"" + e.name + "\" disagrees on compression");
    e.offset = local + kLocalSize + lnlen + lelen;
    e.size = usize;
    e.crc32 = crc;
    if (!fits(e.offset, e.size, end.cd_offset))
      bad(path, "entry \"" + e.name + "\" (" + std::to_string(e.size) + " bytes) runs past the end of the data (truncated file?)");
    if (!z.index_.emplace(e.name, z.entries_.size()).second) bad(path, "the archive holds \"" + e.name + "\" twice");
    spans.push_back({local, e.offset + e.size, z.entries_.size()});
    z.entries_.push_back(std::move(e));
    p += kCentralSize + nlen + elen + clen;
  }
  if (p != cd_end) bad(path, "the central directory has bytes after its last entry");
  // Entries must not share bytes: one storage blob can then never alias another or a header.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].begin < spans[i - 1].end)
      bad(path, "entries \"" + z.entries_[spans[i - 1].entry].name + "\" and \"" + z.entries_[spans[i].entry].name +
                    "\" overlap");
  return z;
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

void ZipArchive::verify_crc(const ZipEntry& e) const {
  uLong crc = crc32(0L, Z_NULL, 0);
  const uint8_t* p = bytes(e);
  uint64_t left = e.size;
  while (left > 0) {
    const uInt n = static_cast<uInt>(std::min<uint64_t>(left, 1u << 30));
    crc = crc32(crc, p, n);
    p += n;
    left -= n;
  }
  if (static_cast<uint32_t>(crc) != e.crc32)
    bad(path(), "entry \"" + e.name + "\" fails its CRC-32 check (corrupted file)");
}

}  // namespace x2v::io
