#include "core/dtype.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace x2v {

namespace {

struct DTypeInfo {
  DType t;
  size_t size;
  const char* name;
  const char* st_name;
  bool is_float;
};

constexpr DTypeInfo kInfo[] = {
    {DType::F32, 4, "f32", "F32", true},        {DType::F16, 2, "f16", "F16", true},
    {DType::BF16, 2, "bf16", "BF16", true},     {DType::F8E4M3, 1, "f8_e4m3fn", "F8_E4M3", true},
    {DType::F8E5M2, 1, "f8_e5m2", "F8_E5M2", true}, {DType::I8, 1, "i8", "I8", false},
    {DType::U8, 1, "u8", "U8", false},          {DType::I32, 4, "i32", "I32", false},
    {DType::I64, 8, "i64", "I64", false},       {DType::BOOL, 1, "bool", "BOOL", false},
};

const DTypeInfo& info(DType t) {
  for (const auto& i : kInfo)
    if (i.t == t) return i;
  fail(ErrorKind::Internal, "unknown dtype code ", static_cast<int>(t));
}

// A small binary float format: `mbits` mantissa bits, exponent bias `bias`, and how it spends its
// top exponent code.
struct MiniFloat {
  int mbits;
  int ebits;
  int bias;
  bool has_inf;  // IEEE-like (f16, e5m2); e4m3fn has no inf and only S.1111.111 is NaN
};
constexpr MiniFloat kF16{10, 5, 15, true};
constexpr MiniFloat kE4M3{3, 4, 7, false};
constexpr MiniFloat kE5M2{2, 5, 15, true};

uint32_t nan_code(const MiniFloat& m) {
  // quiet NaN: all exponent bits, all mantissa bits (e4m3fn) or the top mantissa bit (IEEE-like)
  uint32_t e = ((1u << m.ebits) - 1) << m.mbits;
  return m.has_inf ? e | (1u << (m.mbits - 1)) : e | ((1u << m.mbits) - 1);
}

double max_finite(const MiniFloat& m) {
  int emax = (1 << m.ebits) - 1 - m.bias;  // exponent of the top code
  if (m.has_inf) {
    emax -= 1;
    return std::ldexp(2.0 - std::ldexp(1.0, -m.mbits), emax);
  }
  // e4m3fn: the top exponent code is usable except for the all-ones mantissa
  return std::ldexp(2.0 - std::ldexp(2.0, -m.mbits), emax);
}

// Round-to-nearest-even encode of f into the format (float32 in, bit pattern out).
uint32_t encode(float f, const MiniFloat& m) {
  const uint32_t total = 1 + m.ebits + m.mbits;
  const uint32_t sign = (f32_bits(f) >> 31) << (total - 1);
  if (std::isnan(f)) return sign | nan_code(m);
  double a = std::fabs(static_cast<double>(f));
  const int emin = 1 - m.bias;
  int e;
  if (a == 0.0) return sign;
  std::frexp(a, &e);
  e -= 1;  // a in [2^e, 2^(e+1))
  if (e < emin) e = emin;
  // Quantum of the representable grid around a; a/quantum is exact in double.
  double q = std::ldexp(a, m.mbits - e);
  double r = std::nearbyint(q);  // default rounding mode: to nearest, ties to even
  double val = std::ldexp(r, e - m.mbits);
  if (val > max_finite(m) || std::isinf(f)) {
    if (m.has_inf) return sign | (((1u << m.ebits) - 1) << m.mbits);
    return sign | nan_code(m);
  }
  if (val == 0.0) return sign;
  int ev;
  std::frexp(val, &ev);
  ev -= 1;
  if (ev < emin) {  // subnormal: exponent field 0
    return sign | static_cast<uint32_t>(std::ldexp(val, m.mbits - emin));
  }
  uint32_t mant = static_cast<uint32_t>(std::ldexp(val, m.mbits - ev)) - (1u << m.mbits);
  return sign | (static_cast<uint32_t>(ev + m.bias) << m.mbits) | mant;
}

float decode(uint32_t v, const MiniFloat& m) {
  const uint32_t total = 1 + m.ebits + m.mbits;
  const bool neg = (v >> (total - 1)) & 1u;
  const uint32_t e = (v >> m.mbits) & ((1u << m.ebits) - 1);
  const uint32_t mant = v & ((1u << m.mbits) - 1);
  const uint32_t etop = (1u << m.ebits) - 1;
  double r;
  if (m.has_inf && e == etop) {
    r = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else if (!m.has_inf && e == etop && mant == ((1u << m.mbits) - 1)) {
    r = std::numeric_limits<double>::quiet_NaN();
  } else if (e == 0) {
    r = std::ldexp(static_cast<double>(mant), 1 - m.bias - m.mbits);
  } else {
    r = std::ldexp(static_cast<double>(mant + (1u << m.mbits)), static_cast<int>(e) - m.bias - m.mbits);
  }
  return static_cast<float>(neg ? -r : r);
}

// f16 is on hot conversion paths (weights), so it gets a table for decoding.
struct F16Table {
  float v[65536];
  F16Table() {
    for (uint32_t i = 0; i < 65536; ++i) v[i] = decode(i, kF16);
  }
};
const F16Table& f16_table() {
  static const F16Table t;
  return t;
}

template <class T>
double load_as_double(const void* p, size_t i) {
  return static_cast<double>(static_cast<const T*>(p)[i]);
}

}  // namespace

size_t dtype_size(DType t) { return info(t).size; }
const char* dtype_name(DType t) { return info(t).name; }
bool dtype_is_float(DType t) { return info(t).is_float; }
const char* dtype_to_safetensors(DType t) { return info(t).st_name; }

bool dtype_from_safetensors(std::string_view s, DType* out) {
  for (const auto& i : kInfo) {
    if (s == i.st_name) {
      *out = i.t;
      return true;
    }
  }
  return false;
}

uint16_t f32_to_f16(float f) { return static_cast<uint16_t>(encode(f, kF16)); }
float f16_to_f32(uint16_t h) { return f16_table().v[h]; }
uint8_t f32_to_f8e4m3(float f) { return static_cast<uint8_t>(encode(f, kE4M3)); }
float f8e4m3_to_f32(uint8_t v) { return decode(v, kE4M3); }
uint8_t f32_to_f8e5m2(float f) { return static_cast<uint8_t>(encode(f, kE5M2)); }
float f8e5m2_to_f32(uint8_t v) { return decode(v, kE5M2); }

namespace {

float load_f(const void* p, DType t, size_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::F8E4M3: return f8e4m3_to_f32(static_cast<const uint8_t*>(p)[i]);
    case DType::F8E5M2: return f8e5m2_to_f32(static_cast<const uint8_t*>(p)[i]);
    case DType::I8: return static_cast<const int8_t*>(p)[i];
    case DType::U8: return static_cast<const uint8_t*>(p)[i];
    case DType::BOOL: return static_cast<const uint8_t*>(p)[i] ? 1.f : 0.f;
    case DType::I32: return static_cast<float>(static_cast<const int32_t*>(p)[i]);
    case DType::I64: return static_cast<float>(static_cast<const int64_t*>(p)[i]);
  }
  return 0.f;
}

int64_t load_i(const void* p, DType t, size_t i) {
  switch (t) {
    case DType::I8: return static_cast<const int8_t*>(p)[i];
    case DType::U8: return static_cast<const uint8_t*>(p)[i];
    case DType::BOOL: return static_cast<const uint8_t*>(p)[i] ? 1 : 0;
    case DType::I32: return static_cast<const int32_t*>(p)[i];
    case DType::I64: return static_cast<const int64_t*>(p)[i];
    default: return static_cast<int64_t>(load_f(p, t, i));  // float -> int truncates, like a C cast
  }
}

}  // namespace

void convert(const void* src, DType st, void* dst, DType dt, size_t n) {
  if (st == dt) {
    std::memcpy(dst, src, n * dtype_size(st));
    return;
  }
  if (!dtype_is_float(dt)) {
    for (size_t i = 0; i < n; ++i) {
      int64_t v = load_i(src, st, i);
      switch (dt) {
        case DType::I8: static_cast<int8_t*>(dst)[i] = static_cast<int8_t>(v); break;
        case DType::U8: static_cast<uint8_t*>(dst)[i] = static_cast<uint8_t>(v); break;
        case DType::BOOL: static_cast<uint8_t*>(dst)[i] = v != 0; break;
        case DType::I32: static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(v); break;
        case DType::I64: static_cast<int64_t*>(dst)[i] = v; break;
        default: break;
      }
    }
    return;
  }
  // Integer sources wider than f32's mantissa still go through float: checkpoints never hold them
  // as weights, and index tensors are never converted to float.
#pragma omp parallel for if (n > (1u << 16))
  for (int64_t ii = 0; ii < static_cast<int64_t>(n); ++ii) {
    size_t i = static_cast<size_t>(ii);
    float v = load_f(src, st, i);
    switch (dt) {
      case DType::F32: static_cast<float*>(dst)[i] = v; break;
      case DType::F16: static_cast<uint16_t*>(dst)[i] = f32_to_f16(v); break;
      case DType::BF16: static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v); break;
      case DType::F8E4M3: static_cast<uint8_t*>(dst)[i] = f32_to_f8e4m3(v); break;
      case DType::F8E5M2: static_cast<uint8_t*>(dst)[i] = f32_to_f8e5m2(v); break;
      default: break;
    }
  }
}

}  // namespace x2v
