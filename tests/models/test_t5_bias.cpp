// The T5 position bias as forward computes it on every device, a gather of the transposed table by
// bucket_index, equals the host lookup exactly; and a T5 loaded with explicit CPU options is the
// default one.
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/wan/t5.h"
#include "ops/ops.h"
#include "testutil.h"

using namespace x2v;
using namespace x2v::models::wan;

TEST(T5Bias, GatherByBucketIndexIsTheLookup) {
  std::shared_ptr<io::WeightStore> w = io::open_weights(test::fixture("wan21/t5.safetensors"));
  T5Encoder enc(*w, infer_t5_config(*w));
  const int64_t H = enc.config().num_heads, P = enc.config().num_buckets;
  Tensor table = w->load("blocks.0.pos_embedding.embedding.weight").to(DType::F32);  // [P, H]
  for (int64_t L : {1, 2, 9, 70}) {
    Tensor idx = enc.bucket_index(L);
    ASSERT_EQ(idx.shape(), (Shape{L * L}));
    ASSERT_EQ(idx.dtype(), DType::I64);
    const int64_t* ip = idx.data<int64_t>();
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < L; ++j) ASSERT_EQ(ip[i * L + j], T5Encoder::bucket(j - i, P, 128)) << i << "," << j;
    Tensor gathered = ops::index_select(ops::permute(table, {1, 0}), 1, idx).reshape({H, L, L});
    test::expect_close(gathered, enc.position_bias(table, L), 0.0, "bias by gather, L " + std::to_string(L));
  }
}

TEST(T5Bias, ExplicitCpuOptionsGiveTheSameOutput) {
  io::SafeTensors io = io::SafeTensors::open(test::fixture("wan21/t5.io.safetensors"));
  Tensor ids = io.get("ids").clone(), mask = io.get("mask").clone();
  T5Encoder a = T5Encoder::load(test::fixture("wan21/t5.safetensors"));
  T5Encoder b = T5Encoder::load(test::fixture("wan21/t5.safetensors"), {}, ModelLoadOptions::for_device(Device::CPU));
  EXPECT_EQ(b.device(), Device::CPU);
  test::expect_close(b.forward(ids, mask), a.forward(ids, mask), 0.0, "T5 with explicit CPU options");
}
