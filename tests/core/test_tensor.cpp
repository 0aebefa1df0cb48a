#include "core/tensor.h"
#include "testutil.h"

using namespace x2v;

TEST(Tensor, EmptyZerosAndViews) {
  Tensor t = Tensor::zeros({2, 3, 4}, DType::F32);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 96u);
  for (float v : t.to_vector()) EXPECT_EQ(v, 0.f);
  float* p = t.data<float>();
  for (int i = 0; i < 24; ++i) p[i] = static_cast<float>(i);
  Tensor r = t.reshape({6, -1});
  EXPECT_EQ(r.shape(), (Shape{6, 4}));
  EXPECT_EQ(r.data<float>(), p);  // shares storage
  Tensor s = t.slice(1, 2);
  EXPECT_EQ(s.shape(), (Shape{1, 3, 4}));
  EXPECT_EQ(s.to_vector()[0], 12.f);
  EXPECT_EQ(t[1].shape(), (Shape{3, 4}));
  EXPECT_EQ(t[1].to_vector()[11], 23.f);
  EXPECT_THROW(t.reshape({5, 5}), Error);
  EXPECT_THROW(t.slice(1, 3), Error);
  EXPECT_THROW(t.data<int64_t>(), Error);
  EXPECT_EQ(t.size(-1), 4);
}

TEST(Tensor, ConversionsAndClone) {
  Tensor t = Tensor::from_f32({1.f, -2.5f, 3.00390625f, 65504.f}, {4});
  Tensor b = t.to(DType::BF16);
  EXPECT_EQ(b.dtype(), DType::BF16);
  auto bv = b.to_vector();
  EXPECT_EQ(bv[2], 3.f);  // 3 + 2^-8 rounds to even in bf16
  Tensor h = t.to(DType::F16);
  EXPECT_EQ(h.to_vector()[3], 65504.f);
  Tensor c = t.clone();
  c.data<float>()[0] = 7.f;
  EXPECT_EQ(t.to_vector()[0], 1.f);
  EXPECT_EQ(Tensor::scalar_f32(2.f).item(), 2.f);
  EXPECT_THROW(t.item(), Error);
}

TEST(Tensor, ShapeOverflowIsAnError) {
  EXPECT_THROW(shape_numel({INT64_MAX / 2, 3}), Error);
  EXPECT_THROW(shape_numel({-1, 3}), Error);
  EXPECT_THROW(Tensor::empty({1LL << 40, 1LL << 30}, DType::F32), Error);
}

TEST(Tensor, NoCudaBackendIsAClearError) {
  if (device_allocator(Device::CUDA)) GTEST_SKIP() << "a CUDA backend is registered";
  try {
    Tensor::empty({4}, DType::F32, Device::CUDA);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos);
  }
}
