#include "io/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "core/error.h"

namespace x2v::io {

namespace {
std::string temp_name_for(const std::string& path) {
  std::filesystem::path p(path);
  std::random_device rd;
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".tmp-%d-%08x", static_cast<int>(getpid()), rd());
  // Keep the extension last so that format-sniffing writers (FFmpeg) still see it.
  std::string stem = p.stem().string(), ext = p.extension().string();
  return (p.parent_path() / ("." + stem + suffix + ext)).string();
}

void check_folder(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    fail(ErrorKind::Io, "cannot write ", path, ": folder ", dir.string(), " does not exist");
}
}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  check_folder(path_);
  tmp_ = temp_name_for(path_);
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) fail(ErrorKind::Io, "cannot write ", path_, ": ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (f_) std::fclose(f_);
  if (!done_) std::remove(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, f_) != n)
    fail(ErrorKind::Io, "writing ", path_, " failed: ", std::strerror(errno), " (disk full?)");
}

void AtomicFile::commit() {
  if (std::fflush(f_) != 0 || fsync(fileno(f_)) != 0)
    fail(ErrorKind::Io, "writing ", path_, " failed: ", std::strerror(errno));
  std::fclose(f_);
  f_ = nullptr;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail(ErrorKind::Io, "cannot move the finished file to ", path_, ": ", std::strerror(errno));
  done_ = true;
}

AtomicPath::AtomicPath(std::string path) : path_(std::move(path)) {
  check_folder(path_);
  tmp_ = temp_name_for(path_);
}

AtomicPath::~AtomicPath() {
  if (!done_) std::remove(tmp_.c_str());
}

void AtomicPath::commit() {
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail(ErrorKind::Io, "cannot move the finished file to ", path_, ": ", std::strerror(errno));
  done_ = true;
}

}  // namespace x2v::io
