#pragma once

#include <cstddef>

namespace x2v::io {
// Strict UTF-8 check (no overlongs, no surrogates, nothing past U+10FFFF).
bool utf8_valid(const char* s, size_t n);
}  // namespace x2v::io
