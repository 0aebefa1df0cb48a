// A strict reader for the zip archives torch.save writes: stored (uncompressed) entries, found
// through the central directory, with zip64 records for archives and entries past 4 GB.
//
// Entries are never inflated or copied: an entry is a byte range of the mapped file. Anything a
// torch checkpoint does not contain (compression, encryption, multi-disk archives, overlapping
// entries, duplicate names) is refused as BadFile rather than guessed at.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"

namespace x2v::io {

struct ZipEntry {
  std::string name;
  uint64_t offset = 0;  // of the entry's bytes in the file
  uint64_t size = 0;
  uint32_t crc32 = 0;   // as the central directory records it
};

class ZipArchive {
 public:
  static constexpr uint64_t kMaxEntries = 1'000'000;

  // Throws BadFile (naming the file and the problem) for anything malformed.
  static ZipArchive parse(std::shared_ptr<MappedFile> file);

  const std::string& path() const { return file_->path(); }
  const std::shared_ptr<MappedFile>& file() const { return file_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }  // in central-directory order
  const ZipEntry* find(const std::string& name) const;
  const uint8_t* bytes(const ZipEntry& e) const { return file_->data() + e.offset; }
  // BadFile unless the entry's CRC-32 matches (reads the whole entry: meant for small entries).
  void verify_crc(const ZipEntry& e) const;

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, size_t> index_;
};

}  // namespace x2v::io
