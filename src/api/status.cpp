#include "api/status.h"

#include "x2v/x2v.h"

namespace x2v::api {

int status_code(ErrorKind k) {
  switch (k) {
    case ErrorKind::InvalidArgument: return X2V_ERR_INVALID_ARGUMENT;
    case ErrorKind::NotFound: return X2V_ERR_NOT_FOUND;
    case ErrorKind::BadFile: return X2V_ERR_BAD_FILE;
    case ErrorKind::Unsupported: return X2V_ERR_UNSUPPORTED;
    case ErrorKind::Io: return X2V_ERR_IO;
    case ErrorKind::OutOfMemory: return X2V_ERR_OUT_OF_MEMORY;
    case ErrorKind::Device: return X2V_ERR_DEVICE;
    case ErrorKind::Internal: return X2V_ERR_INTERNAL;
  }
  return X2V_ERR_INTERNAL;
}

}  // namespace x2v::api
