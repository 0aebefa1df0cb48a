#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace x2v::io {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    fail(e == ENOENT ? ErrorKind::NotFound : ErrorKind::Io, "cannot open ", path, ": ", std::strerror(e));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorKind::Io, path, " is not a regular file");
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ == 0) {
    ::close(fd);
    fail(ErrorKind::BadFile, path, " is empty (0 bytes): the download or conversion did not finish");
  }
  void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) fail(ErrorKind::Io, "cannot map ", path, ": ", std::strerror(errno));
  f->data_ = static_cast<const uint8_t*>(p);
  f->mapped_ = true;
  return f;
}

std::shared_ptr<MappedFile> MappedFile::from_bytes(const void* data, size_t size, std::string label) {
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->owned_ = std::make_unique<uint8_t[]>(size ? size : 1);
  if (size) std::memcpy(f->owned_.get(), data, size);
  f->data_ = f->owned_.get();
  f->size_ = size;
  f->path_ = std::move(label);
  return f;
}

MappedFile::~MappedFile() {
  if (mapped_) munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace x2v::io
