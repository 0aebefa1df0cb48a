// The one mapping from the engine's error kinds to status codes: the C API's X2V_ERR_* values
// (include/x2v/x2v.h), the C++ API's x2v::Status, and the exit codes of the CLI.
#pragma once

#include "core/error.h"

namespace x2v::api {

int status_code(ErrorKind k);

}  // namespace x2v::api
