// Typed errors. Every user-facing failure is an x2v::Error with a kind, a message that says what was
// wrong, and (where it helps) what to do about it. The CLI maps kinds to exit codes.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace x2v {

enum class ErrorKind {
  InvalidArgument,  // a bad option, shape, size or request
  BadFile,          // a file that exists but is malformed, truncated or hostile
  NotFound,         // a file or tensor that should be there is not
  Unsupported,      // a valid thing x2v does not handle (yet)
  Io,               // the OS refused (permissions, disk full, ...)
  OutOfMemory,      // host or device allocation failed
  Device,           // a CUDA / driver error
  Internal,         // a broken invariant: a bug in x2v
};

const char* error_kind_name(ErrorKind k);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string msg) : std::runtime_error(std::move(msg)), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

namespace detail {
[[noreturn]] void throw_error(ErrorKind kind, std::string msg);
inline void append(std::string&) {}
template <class T, class... R>
void append(std::string& s, const T& v, const R&... rest);
}  // namespace detail

// Concatenate the arguments with operator<< semantics, then throw.
template <class... A>
[[noreturn]] void fail(ErrorKind kind, const A&... parts);

}  // namespace x2v

#include <sstream>

namespace x2v {
namespace detail {
template <class T, class... R>
void append(std::string& s, const T& v, const R&... rest) {
  std::ostringstream os;
  os << v;
  s += os.str();
  append(s, rest...);
}
}  // namespace detail

template <class... A>
[[noreturn]] void fail(ErrorKind kind, const A&... parts) {
  std::string s;
  detail::append(s, parts...);
  detail::throw_error(kind, std::move(s));
}
}  // namespace x2v

// Internal invariant check: a failure is a bug in x2v, never a user error.
#define X2V_CHECK(cond, ...)                                                                  \
  do {                                                                                        \
    if (!(cond))                                                                              \
      ::x2v::fail(::x2v::ErrorKind::Internal, __FILE__, ":", __LINE__, ": check failed: " #cond \
                  " ", ##__VA_ARGS__);                                                        \
  } while (0)
