#include <cmath>
#include <limits>

#include "core/dtype.h"
#include "testutil.h"

using namespace x2v;

TEST(DType, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  // The largest float rounds up to infinity in bf16.
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
}

TEST(DType, F16EdgeValues) {
  EXPECT_EQ(f32_to_f16(65504.f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65519.f), 0x7bff);   // below the rounding midpoint to infinity
  EXPECT_EQ(f32_to_f16(65520.f), 0x7c00);   // the midpoint rounds to even = infinity
  EXPECT_EQ(f32_to_f16(std::ldexp(1.f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.f, -25)), 0x0000);  // half of it: tie to even (zero)
  EXPECT_EQ(f32_to_f16(std::ldexp(3.f, -25)), 0x0002);  // 1.5 quanta: tie to even (2)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(f32_to_f16(-2.f), 0xc000);
  EXPECT_EQ(f16_to_f32(0x3c00), 1.f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.f, -24));
  EXPECT_TRUE(std::isinf(f16_to_f32(0xfc00)) && f16_to_f32(0xfc00) < 0);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
}

TEST(DType, F16RoundTripsEveryFiniteCode) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << "code " << h;
  }
}

TEST(DType, F8E4M3FnEdgeValues) {
  EXPECT_EQ(f8e4m3_to_f32(0x7e), 448.f);  // largest finite
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(0x7f)));
  EXPECT_EQ(f32_to_f8e4m3(448.f), 0x7e);
  EXPECT_EQ(f32_to_f8e4m3(464.f), 0x7e);                 // midpoint to 480 ties to even (448)
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(f32_to_f8e4m3(470.f))));  // no infinity: overflow is NaN
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(f32_to_f8e4m3(1e9f))));
  EXPECT_EQ(f32_to_f8e4m3(std::ldexp(1.f, -9)), 0x01);   // smallest subnormal
  EXPECT_EQ(f32_to_f8e4m3(-1.f), 0xb8);
  for (uint32_t v = 0; v < 256; ++v) {
    float f = f8e4m3_to_f32(static_cast<uint8_t>(v));
    if (!std::isnan(f)) {
      ASSERT_EQ(f32_to_f8e4m3(f), v);
    }
  }
}

TEST(DType, F8E5M2EdgeValues) {
  EXPECT_EQ(f8e5m2_to_f32(0x7b), 57344.f);
  EXPECT_TRUE(std::isinf(f8e5m2_to_f32(0x7c)));
  EXPECT_EQ(f32_to_f8e5m2(61440.f), 0x7c);  // midpoint to the next binade rounds to even: infinity
  EXPECT_EQ(f32_to_f8e5m2(60000.f), 0x7b);
  EXPECT_EQ(f32_to_f8e5m2(std::ldexp(1.f, -16)), 0x01);
  for (uint32_t v = 0; v < 256; ++v) {
    float f = f8e5m2_to_f32(static_cast<uint8_t>(v));
    if (!std::isnan(f)) {
      ASSERT_EQ(f32_to_f8e5m2(f), v);
    }
  }
}

TEST(DType, ConvertIntegersAndFloats) {
  int64_t src[4] = {-3, 0, 7, 1000000};
  int32_t i32[4];
  convert(src, DType::I64, i32, DType::I32, 4);
  EXPECT_EQ(i32[3], 1000000);
  float f[4];
  convert(src, DType::I64, f, DType::F32, 4);
  EXPECT_EQ(f[0], -3.f);
  uint16_t bf[4];
  convert(f, DType::F32, bf, DType::BF16, 4);
  EXPECT_EQ(bf16_to_f32(bf[2]), 7.f);
  float back[4];
  convert(bf, DType::BF16, back, DType::F32, 4);
  EXPECT_EQ(back[3], 999424.f);  // 1e6 rounded to bf16's 8 significant bits
}

TEST(DType, SafetensorsNames) {
  DType t;
  EXPECT_TRUE(dtype_from_safetensors("F8_E4M3", &t));
  EXPECT_EQ(t, DType::F8E4M3);
  EXPECT_FALSE(dtype_from_safetensors("F64", &t));
  EXPECT_FALSE(dtype_from_safetensors("f32", &t));
}
