// PyTorch zip checkpoints: the fixtures read exactly like their safetensors twins; views, shared
// storages, nested dicts and zip64 archives work; malformed and hostile files are refused.
#include <cmath>
#include <cstring>
#include <functional>

#include "io/mapped_file.h"
#include "io/pickle.h"
#include "io/pth.h"
#include "io/weights.h"
#include "io/zip.h"
#include "pth_builder.h"
#include "testutil.h"

namespace x2v {
namespace {

using test::FakeTensor;
using test::make_pth;
using test::Pickle;
using test::raw_bytes;
using test::state_dict_pickle;

std::unique_ptr<io::WeightStore> open_bytes(const std::string& bytes) {
  return io::open_pth(io::MappedFile::from_bytes(bytes.data(), bytes.size(), "test.pth"));
}

// Opens and loads every tensor; expects an x2v::Error of `kind` whose message holds `needle`.
void expect_refused(const std::string& bytes, const std::string& needle, ErrorKind kind = ErrorKind::BadFile) {
  try {
    auto s = open_bytes(bytes);
    for (const auto& n : s->names()) s->load(n);
    ADD_FAILURE() << "accepted a file that should fail with \"" << needle << "\"";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  }
}

void expect_same_weights(const std::string& pth, const std::string& st, DType pth_dtype) {
  auto a = io::open_weights(test::fixture(pth));
  auto b = io::open_weights(test::fixture(st));
  EXPECT_EQ(a->format(), "pytorch zip");
  ASSERT_EQ(a->names(), b->names());
  ASSERT_FALSE(a->names().empty());
  for (const auto& n : a->names()) {
    Tensor ta = a->load(n), tb = b->load(n);
    EXPECT_EQ(ta.dtype(), pth_dtype) << n;
    ASSERT_EQ(ta.shape(), tb.shape()) << n;
    EXPECT_EQ(a->meta(n).shape, ta.shape()) << n;
    const auto va = ta.to_vector(), vb = tb.to_vector();
    ASSERT_EQ(va.size(), vb.size()) << n;
    size_t diff = 0;
    for (size_t i = 0; i < va.size(); ++i) diff += std::memcmp(&va[i], &vb[i], 4) != 0;
    EXPECT_EQ(diff, 0u) << n << ": " << diff << " of " << va.size() << " values differ";
  }
}

TEST(Pth, VaeFp32MatchesSafetensors) { expect_same_weights("wan21/vae.fp32.pth", "wan21/vae.safetensors", DType::F32); }
TEST(Pth, T5Bf16MatchesSafetensors) { expect_same_weights("wan21/t5.bf16.pth", "wan21/t5.safetensors", DType::BF16); }
TEST(Pth, ClipFp16MatchesSafetensors) { expect_same_weights("wan21/clip.fp16.pth", "wan21/clip.safetensors", DType::F16); }

TEST(Pth, FixtureTensorsAreZeroCopyViews) {
  auto file = io::MappedFile::open(test::fixture("wan21/t5.bf16.pth"));
  auto s = io::open_pth(file);
  Tensor t = s->load("token_embedding.weight");
  const auto* p = static_cast<const uint8_t*>(t.raw());
  EXPECT_TRUE(p >= file->data() && p + t.nbytes() <= file->data() + file->size());
}

// Storage "0": 12 floats 0..11; storage "1": 3 int64; storage "2": 4 bf16.
struct Synthetic {
  std::vector<float> f{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  std::vector<int64_t> l{-5, 1ll << 40, 7};
  std::vector<uint16_t> h{f32_to_bf16(1.5f), f32_to_bf16(-2.f), f32_to_bf16(3.25f), f32_to_bf16(0.f)};
  std::vector<FakeTensor> tensors{
      {"matrix", "FloatStorage", "0", 12, 0, {3, 4}, {4, 1}},
      {"transposed", "FloatStorage", "0", 12, 0, {4, 3}, {1, 4}},  // shares storage 0, not contiguous
      {"every_other", "FloatStorage", "0", 12, 1, {3}, {4}},       // offset and stride
      {"row2", "FloatStorage", "0", 12, 8, {4}, {1}},              // contiguous at an offset
      {"scalar", "LongStorage", "1", 3, 2, {}, {}},
      {"ids", "LongStorage", "1", 3, 0, {3}, {1}},
      {"half", "BFloat16Storage", "2", 4, 0, {2, 2}, {2, 1}},
      {"empty", "FloatStorage", "0", 12, 0, {0, 5}, {5, 1}},
  };
  std::map<std::string, std::string> storages() const {
    return {{"0", raw_bytes(f)}, {"1", raw_bytes(l)}, {"2", raw_bytes(h)}};
  }
  std::string file(bool wrap = false, bool zip64 = false) const {
    return make_pth(state_dict_pickle(tensors, wrap), storages(), zip64);
  }
};

void check_synthetic(const io::WeightStore& s) {
  EXPECT_EQ(s.names(), (std::vector<std::string>{"empty", "every_other", "half", "ids", "matrix", "row2", "scalar", "transposed"}));
  EXPECT_EQ(s.load("matrix").to_vector(), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  Tensor tr = s.load("transposed");
  EXPECT_EQ(tr.shape(), (Shape{4, 3}));
  EXPECT_EQ(tr.to_vector(), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  EXPECT_EQ(s.load("every_other").to_vector(), (std::vector<float>{1, 5, 9}));
  EXPECT_EQ(s.load("row2").to_vector(), (std::vector<float>{8, 9, 10, 11}));
  Tensor sc = s.load("scalar");
  EXPECT_EQ(sc.dtype(), DType::I64);
  EXPECT_EQ(sc.dim(), 0);
  EXPECT_EQ(sc.data<int64_t>()[0], 7);
  Tensor ids = s.load("ids");
  EXPECT_EQ(ids.data<int64_t>()[0], -5);
  EXPECT_EQ(ids.data<int64_t>()[1], 1ll << 40);
  Tensor h = s.load("half");
  EXPECT_EQ(h.dtype(), DType::BF16);
  EXPECT_EQ(h.to_vector(), (std::vector<float>{1.5f, -2.f, 3.25f, 0.f}));
  EXPECT_EQ(s.load("empty").shape(), (Shape{0, 5}));
  EXPECT_EQ(s.meta("transposed").shape, (Shape{4, 3}));
}

TEST(Pth, ViewsOffsetsSharedStoragesAndDtypes) { check_synthetic(*open_bytes(Synthetic().file())); }
TEST(Pth, NestedStateDict) { check_synthetic(*open_bytes(Synthetic().file(/*wrap=*/true))); }
TEST(Pth, Zip64Archive) { check_synthetic(*open_bytes(Synthetic().file(false, /*zip64=*/true))); }

TEST(Pth, ContiguousAlignedTensorIsZeroCopyStridedIsCopied) {
  std::string bytes = Synthetic().file();
  auto file = io::MappedFile::from_bytes(bytes.data(), bytes.size(), "t.pth");
  auto s = io::open_pth(file);
  auto inside = [&](const Tensor& t) {
    const auto* p = static_cast<const uint8_t*>(t.raw());
    return p >= file->data() && p < file->data() + file->size();
  };
  EXPECT_TRUE(inside(s->load("row2")));
  EXPECT_FALSE(inside(s->load("transposed")));
}

TEST(Pth, OpenWeightsSniffsZipByContent) {
  std::string path = test::temp_dir() + "/weights.bin";
  std::string bytes = Synthetic().file();
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_TRUE(f);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  auto s = io::open_weights(path);
  EXPECT_EQ(s->format(), "pytorch zip");
  check_synthetic(*s);
}

// ---- corrupt and hostile files

std::string pkl_file(const std::string& pickle) { return make_pth(pickle, {{"0", raw_bytes(std::vector<float>(4, 1.f))}}); }
std::string one_tensor(const FakeTensor& t, size_t storage_floats = 4) {
  return make_pth(state_dict_pickle({t}), {{"0", raw_bytes(std::vector<float>(storage_floats, 1.f))}});
}
std::string call(const std::string& module, const std::string& name) {
  return Pickle().proto().global(module, name).str("touch /tmp/x2v-pwned").op(0x85).reduce().stop().bytes;
}

TEST(PthCorrupt, Table) {
  const std::string good = Synthetic().file();
  struct Case {
    const char* what;
    std::string bytes;
    std::string needle;
    ErrorKind kind = ErrorKind::BadFile;
  };
  std::string bad_cd = good;
  bad_cd[good.rfind(std::string("PK\x01\x02", 4))] = 'Q';
  std::string bad_cd_offset = good;
  bad_cd_offset[good.size() - 6] ^= 0x40;  // central directory offset
  std::string crc = good;
  {
    auto f = io::MappedFile::from_bytes(good.data(), good.size(), "z");
    crc[io::ZipArchive::parse(f).find("archive/data.pkl")->offset + 3] ^= 1;  // caught by the CRC
  }
  const FakeTensor f{"w", "FloatStorage", "0", 4, 0, {2, 2}, {2, 1}};
  auto with = [&](std::function<void(FakeTensor&)> edit) {
    FakeTensor t = f;
    edit(t);
    return one_tensor(t);
  };
  std::vector<Case> cases{
      {"truncated zip", good.substr(0, good.size() / 2), "end-of-central-directory"},
      {"trailing bytes", good + "junk", "end-of-central-directory"},
      {"too short", "PK\x03\x04", "too short"},
      {"bad central directory", bad_cd, "central directory"},
      {"bad central directory offset", bad_cd_offset, "central directory"},
      {"data.pkl CRC", crc, "CRC"},
      {"compressed entry", test::make_zip({{"archive/data.pkl", "x", 8}}), "compressed"},
      {"no data.pkl", test::make_zip({{"archive/version", "3\n"}}), "data.pkl"},
      {"entry outside the folder", test::make_zip({{"archive/data.pkl", state_dict_pickle({})}, {"evil/x", "1"}}),
       "outside"},
      {"duplicate entries", test::make_zip({{"archive/data.pkl", "x"}, {"archive/data.pkl", "x"}}), "twice"},
      {"big-endian", test::make_zip({{"archive/data.pkl", state_dict_pickle({})}, {"archive/byteorder", "big"}}),
       "big-endian", ErrorKind::Unsupported},
      {"os.system", pkl_file(call("os", "system")), "os.system"},
      {"posix.system", pkl_file(call("posix", "system")), "posix.system"},
      {"builtins.eval", pkl_file(call("builtins", "eval")), "builtins.eval"},
      {"other torch._utils", pkl_file(call("torch._utils", "_rebuild_device_tensor_from_numpy")), "malicious"},
      {"STACK_GLOBAL os.system", pkl_file(Pickle().proto(4).str("os").str("system").op(0x93).stop().bytes), "os.system"},
      {"REDUCE on a storage class", pkl_file(Pickle().proto().global("torch", "FloatStorage").empty_tuple().reduce().stop().bytes),
       "torch.FloatStorage"},
      {"REDUCE on a string", pkl_file(Pickle().proto().str("os.system").empty_tuple().reduce().stop().bytes), "REDUCE calls a str"},
      {"INST", pkl_file(Pickle().proto().mark().raw("ios\nsystem\n").stop().bytes), "INST"},
      {"NEWOBJ", pkl_file(Pickle().proto().global("collections", "OrderedDict").empty_tuple().op(0x81).stop().bytes), "NEWOBJ"},
      {"float64 storage", with([](FakeTensor& t) { t.storage_type = "DoubleStorage"; }), "float64", ErrorKind::Unsupported},
      {"unknown storage class", with([](FakeTensor& t) { t.storage_type = "EvilStorage"; }), "torch.EvilStorage"},
      {"storage key missing", with([](FakeTensor& t) { t.key = "7"; }), "no archive/data/7"},
      {"storage key is a path", with([](FakeTensor& t) { t.key = "../0"; }), "not a plain name"},
      {"storage size disagrees", with([](FakeTensor& t) { t.storage_numel = 5; }), "should hold 5 elements"},
      {"view past the storage end", with([](FakeTensor& t) { t.size = {2, 3}; t.stride = {3, 1}; }), "past the end"},
      {"offset past the storage end", with([](FakeTensor& t) { t.offset = 1; }), "past the end"},
      {"stride past the storage end", with([](FakeTensor& t) { t.stride = {1ll << 62, 1}; }), "past the end"},
      {"huge dimensions", with([](FakeTensor& t) { t.size = {1ll << 40, 1ll << 40}; t.stride = {0, 0}; }), "absurd shape"},
      {"negative dimension", with([](FakeTensor& t) { t.size = {-2, 2}; }), "negative"},
      {"size/stride ranks differ", with([](FakeTensor& t) { t.stride = {1}; }), "different lengths"},
      {"rank 9", with([](FakeTensor& t) { t.size.assign(9, 1); t.stride.assign(9, 1); }), "rank 9"},
      {"stack underflow", pkl_file(Pickle().proto().reduce().stop().bytes), "stack underflow"},
      {"pop below a mark", pkl_file(Pickle().proto().str("a").mark().op(0x85).stop().bytes), "stack underflow"},
      {"TUPLE without MARK", pkl_file(Pickle().proto().tuple().stop().bytes), "no MARK"},
      {"unknown opcode", pkl_file(Pickle().proto().op(0xff).stop().bytes), "unknown"},
      {"memo index out of range", pkl_file(Pickle().proto().binget(5).stop().bytes), "never stored"},
      {"no STOP", pkl_file(Pickle().proto().empty_dict().bytes), "STOP"},
      {"bytes after STOP", pkl_file(Pickle().proto().empty_dict().stop().none().bytes), "after STOP"},
      {"values left on the stack", pkl_file(Pickle().proto().none().empty_dict().stop().bytes), "on the stack"},
      {"truncated string", pkl_file(Pickle().proto().op('X').raw(std::string("\xff\xff\x00\x00" "ab", 6)).bytes), "truncated"},
      {"string over the limit",
       pkl_file(Pickle().proto().op(0x8d).raw(std::string("\x00\x00\x00\x40\x00\x00\x00\x00", 8)).bytes), "limit"},
      {"non-UTF-8 name", pkl_file(Pickle().proto().str("\xc3\x28").stop().bytes), "UTF-8"},
      {"list containing itself",
       pkl_file(Pickle().proto().op(']').binput(0).binget(0).op('a').stop().bytes), "after using it"},
      {"not a dict", pkl_file(Pickle().proto().none().stop().bytes), "None, not a state dict"},
      {"non-tensor value", pkl_file(Pickle().proto().empty_dict().str("w").integer(3).setitem().stop().bytes), "not a tensor"},
      {"backward hooks",
       pkl_file(Pickle().proto().global("torch._utils", "_rebuild_tensor_v2").mark()
                    .mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(4).tuple().binpersid()
                    .integer(0).ints({4}).ints({1}).boolean(false)
                    .empty_dict().str("h").integer(1).setitem().tuple().reduce().stop().bytes),
       "backward hooks"},
      {"protocol 9", pkl_file(Pickle().proto(9).empty_dict().stop().bytes), "protocol 9"},
  };
  // Nesting deeper than the limit: EMPTY_TUPLE then TUPLE1 forty times.
  Pickle deep;
  deep.proto().empty_tuple();
  for (int i = 0; i < 40; ++i) deep.op(0x85);
  cases.push_back({"nesting too deep", pkl_file(deep.stop().bytes), "nested deeper"});
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    expect_refused(c.bytes, c.needle, c.kind);
  }
}

TEST(PthCorrupt, EveryTruncationIsAnError) {
  const std::string good = Synthetic().file();
  for (size_t n = 0; n < good.size(); n += 7) {
    try {
      auto s = open_bytes(good.substr(0, n));
      ADD_FAILURE() << "a file truncated to " << n << " bytes was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadFile) << e.what();
    }
  }
}

TEST(PthCorrupt, EveryFlippedPickleByteFailsCleanlyOrLoads) {
  // Whatever one flipped byte does, the result is a clean error or a store whose tensors load.
  const Synthetic syn;
  const std::string pkl = state_dict_pickle(syn.tensors);
  size_t errors = 0;
  for (size_t i = 0; i < pkl.size(); ++i) {
    std::string p = pkl;
    p[i] = static_cast<char>(p[i] ^ 0x5a);
    try {
      auto s = open_bytes(make_pth(p, syn.storages()));
      for (const auto& n : s->names()) s->load(n).to_vector();
    } catch (const Error& e) {
      EXPECT_TRUE(e.kind() == ErrorKind::BadFile || e.kind() == ErrorKind::Unsupported) << e.what();
      ++errors;
    }
  }
  EXPECT_GT(errors, pkl.size() / 2);
}

TEST(Pickle, LimitsAreEnforced) {
  io::pickle::Limits lim;
  lim.max_memo = 2;
  const std::string memo = Pickle().proto().none().binput(0).binput(1).binput(2).stop().bytes;
  EXPECT_THROW(io::pickle::unpickle(reinterpret_cast<const uint8_t*>(memo.data()), memo.size(), "m", lim), Error);
  lim = {};
  lim.max_stack = 8;
  Pickle many;
  many.proto();
  for (int i = 0; i < 9; ++i) many.none();
  EXPECT_THROW(io::pickle::unpickle(reinterpret_cast<const uint8_t*>(many.bytes.data()), many.bytes.size(), "s", lim), Error);
  lim = {};
  lim.max_objects = 3;
  EXPECT_THROW(io::pickle::unpickle(reinterpret_cast<const uint8_t*>(many.bytes.data()), many.bytes.size(), "o", lim), Error);
  // Within the limits the same kind of pickle parses.
  const std::string ok = Pickle().proto().none().binput(0).binget(0).op(0x86).stop().bytes;
  auto v = io::pickle::unpickle(reinterpret_cast<const uint8_t*>(ok.data()), ok.size(), "ok");
  EXPECT_EQ(v->type, io::pickle::Value::Type::Tuple);
  EXPECT_EQ(v->items.size(), 2u);
}

TEST(Pickle, NumbersDecode) {
  Pickle p;
  p.proto().mark().integer(-7).integer(300).integer(70000).integer(-(1ll << 40));
  p.op(0x8a).op(2).raw(std::string("\x00\x80", 2));  // LONG1 -32768
  p.op(0x8a).op(0);                                    // LONG1 0
  p.op('G').raw(std::string("\x3f\xf8\x00\x00\x00\x00\x00\x00", 8));  // 1.5
  p.tuple().stop();
  auto v = io::pickle::unpickle(reinterpret_cast<const uint8_t*>(p.bytes.data()), p.bytes.size(), "n");
  ASSERT_EQ(v->items.size(), 7u);
  EXPECT_EQ(v->items[0]->i, -7);
  EXPECT_EQ(v->items[1]->i, 300);
  EXPECT_EQ(v->items[2]->i, 70000);
  EXPECT_EQ(v->items[3]->i, -(1ll << 40));
  EXPECT_EQ(v->items[4]->i, -32768);
  EXPECT_EQ(v->items[5]->i, 0);
  EXPECT_EQ(v->items[6]->f, 1.5);
}

}  // namespace
}  // namespace x2v
