// A read-only memory map of a whole file, shared by every tensor viewing it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace x2v::io {

class MappedFile {
 public:
  // Throws NotFound / Io / BadFile (empty file) with the path in the message.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  // Wrap bytes already in memory (tests, fuzzers); the bytes are copied.
  static std::shared_ptr<MappedFile> from_bytes(const void* data, size_t size, std::string label);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::string path_;
  std::unique_ptr<uint8_t[]> owned_;
};

}  // namespace x2v::io
