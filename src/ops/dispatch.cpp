#include "ops/dispatch.h"

namespace x2v::ops::detail {

Device common_device(const char* op, std::initializer_list<const Tensor*> ts) {
  Device d = Device::CPU;
  bool first = true;
  for (const Tensor* t : ts) {
    if (!t->defined()) continue;
    if (!first && t->device() != d)
      fail(ErrorKind::InvalidArgument, op, ": inputs on different devices (", device_name(d), " and ",
           device_name(t->device()), ")");
    d = t->device();
    first = false;
  }
  return d;
}

void bad_shape(const char* op, const std::string& what) { fail(ErrorKind::InvalidArgument, op, ": ", what); }

}  // namespace x2v::ops::detail
