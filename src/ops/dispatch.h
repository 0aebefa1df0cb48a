// Shared checks for the dispatching op front-ends (src/ops/<family>.cpp).
#pragma once

#include <initializer_list>
#include <string>

#include "core/tensor.h"

namespace x2v::ops::detail {

// The CPU backend reads f32; other dtypes are converted (weights normally arrive as f32 already).
inline Tensor host_f32(const Tensor& t) { return !t.defined() || t.dtype() == DType::F32 ? t : t.to(DType::F32); }

// All defined tensors on one device; returns it.
Device common_device(const char* op, std::initializer_list<const Tensor*> ts);

[[noreturn]] void bad_shape(const char* op, const std::string& what);

}  // namespace x2v::ops::detail
