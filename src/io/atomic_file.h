// Output files that appear whole or not at all: written to a temporary name in the destination
// folder and renamed into place by commit(). Destroyed without commit(), the temporary is removed.
#pragma once

#include <cstdio>
#include <string>

namespace x2v::io {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // Io error (naming the folder) if it cannot be created
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void commit();
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  FILE* f_ = nullptr;
  bool done_ = false;
};

// For writers that need a path of their own (libraries that open files themselves): a unique
// temporary path beside `path`, removed on destruction unless commit() renamed it into place.
class AtomicPath {
 public:
  explicit AtomicPath(std::string path);
  ~AtomicPath();
  AtomicPath(const AtomicPath&) = delete;
  AtomicPath& operator=(const AtomicPath&) = delete;
  const std::string& temp_path() const { return tmp_; }
  void commit();

 private:
  std::string path_, tmp_;
  bool done_ = false;
};

}  // namespace x2v::io
