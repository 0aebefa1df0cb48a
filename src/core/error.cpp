#include "core/error.h"

namespace x2v {

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::InvalidArgument: return "invalid argument";
    case ErrorKind::BadFile: return "bad file";
    case ErrorKind::NotFound: return "not found";
    case ErrorKind::Unsupported: return "unsupported";
    case ErrorKind::Io: return "i/o error";
    case ErrorKind::OutOfMemory: return "out of memory";
    case ErrorKind::Device: return "device error";
    case ErrorKind::Internal: return "internal error";
  }
  return "error";
}

namespace detail {
void throw_error(ErrorKind kind, std::string msg) { throw Error(kind, std::move(msg)); }
}  // namespace detail

}  // namespace x2v
