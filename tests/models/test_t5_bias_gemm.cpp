// The device path of the T5 position bias: bucket one-hot · tableᵀ, computed here on the CPU,
// equals the host lookup exactly, and a T5 loaded with explicit CPU options is the default one.
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/wan/t5.h"
#include "ops/ops.h"
#include "testutil.h"

using namespace x2v;
using namespace x2v::models::wan;

TEST(T5BiasGemm, OneHotTimesTableIsTheLookup) {
  std::shared_ptr<io::WeightStore> w = io::open_weights(test::fixture("wan21/t5.safetensors"));
  T5Encoder enc(*w, infer_t5_config(*w));
  const int64_t H = enc.config().num_heads, P = enc.config().num_buckets;
  Tensor table = w->load("blocks.0.pos_embedding.embedding.weight").to(DType::F32);  // [P, H]
  for (int64_t L : {1, 2, 9, 70}) {
    Tensor onehot = enc.bucket_onehot(L);
    ASSERT_EQ(onehot.shape(), (Shape{L * L, P}));
    // One 1 per row, in the bucket of (j − i).
    const std::vector<float> oh = onehot.to_vector();
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < L; ++j)
        for (int64_t b = 0; b < P; ++b)
          ASSERT_EQ(oh[static_cast<size_t>((i * L + j) * P + b)], b == T5Encoder::bucket(j - i, P, 128) ? 1.f : 0.f);
    Tensor via_gemm = ops::permute(ops::linear(onehot, ops::permute(table, {1, 0})), {1, 0}).reshape({H, L, L});
    test::expect_close(via_gemm, enc.position_bias(table, L), 0.0, "bias via GEMM, L " + std::to_string(L));
  }
}

TEST(T5BiasGemm, ExplicitCpuOptionsGiveTheSameOutput) {
  io::SafeTensors io = io::SafeTensors::open(test::fixture("wan21/t5.io.safetensors"));
  Tensor ids = io.get("ids").clone(), mask = io.get("mask").clone();
  T5Encoder a = T5Encoder::load(test::fixture("wan21/t5.safetensors"));
  T5Encoder b = T5Encoder::load(test::fixture("wan21/t5.safetensors"), {}, ModelLoadOptions::for_device(Device::CPU));
  EXPECT_EQ(b.device(), Device::CPU);
  test::expect_close(b.forward(ids, mask), a.forward(ids, mask), 0.0, "T5 with explicit CPU options");
}
