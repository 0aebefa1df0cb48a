// Element types and their exact conversions to and from float32.
// Rounding is round-to-nearest-even everywhere, matching PyTorch's casts (including its overflow
// rules for the fp8 formats: e4m3fn has no infinity and overflows to NaN; e5m2 overflows to inf).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace x2v {

enum class DType : uint8_t { F32, F16, BF16, F8E4M3, F8E5M2, I8, U8, I32, I64, BOOL };

size_t dtype_size(DType t);
const char* dtype_name(DType t);        // "f32", "bf16", ...
bool dtype_is_float(DType t);
// safetensors header names ("F32", "BF16", "F8_E4M3", ...); false for an unknown name.
bool dtype_from_safetensors(std::string_view s, DType* out);
const char* dtype_to_safetensors(DType t);

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// bf16: the top half of an f32, rounded to nearest even; NaN stays a (quiet) NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
uint8_t f32_to_f8e4m3(float f);
float f8e4m3_to_f32(uint8_t v);
uint8_t f32_to_f8e5m2(float f);
float f8e5m2_to_f32(uint8_t v);

// Round a float32 through bf16 and back (what an autocast linear does to its operands).
inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

// Convert n elements between any two dtypes (through float32 / int64 as appropriate).
void convert(const void* src, DType st, void* dst, DType dt, size_t n);

}  // namespace x2v
