// safetensors: writer/reader round trip, a table of corrupt files (each a clean BadFile naming the
// problem), and sharded indexes.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "testutil.h"

namespace x2v {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// 8-byte little-endian header length, header, data.
std::string st_file(const std::string& header, const std::string& data = "", uint64_t claimed = UINT64_MAX) {
  const uint64_t n = claimed == UINT64_MAX ? header.size() : claimed;
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return s + header + data;
}

io::SafeTensors parse(const std::string& bytes) {
  return io::SafeTensors::parse(io::MappedFile::from_bytes(bytes.data(), bytes.size(), "test.safetensors"));
}

Tensor bytes_tensor(const Shape& shape, DType dt, uint64_t seed) {
  Tensor t = Tensor::empty(shape, dt);
  auto* p = static_cast<uint8_t*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>((seed * 131 + i * 29) >> 1);
  if (dt == DType::BOOL)
    for (size_t i = 0; i < t.nbytes(); ++i) p[i] &= 1;
  return t;
}

TEST(Safetensors, RoundTrip) {
  const std::string path = test::temp_dir() + "/rt.safetensors";
  std::vector<std::pair<std::string, Tensor>> in{
      {"a.bf16", bytes_tensor({3, 5}, DType::BF16, 1)},  // odd byte count first: the writer must realign
      {"b.f32", test::random_tensor({4, 3, 2}, 7)},
      {"c.i64", bytes_tensor({3}, DType::I64, 2)},
      {"d.u8", bytes_tensor({7}, DType::U8, 3)},
      {"e.f16", bytes_tensor({2, 2}, DType::F16, 4)},
      {"f.f8", bytes_tensor({5}, DType::F8E4M3, 5)},
      {"g.bool", bytes_tensor({4}, DType::BOOL, 6)},
      {"h.i32", bytes_tensor({2}, DType::I32, 7)},
      {"i.i8", bytes_tensor({3}, DType::I8, 8)},
      {"scalar", Tensor::scalar_f32(2.5f)},
      {"empty", Tensor::empty({0, 4}, DType::F32)},
  };
  io::write_safetensors(path, in, {{"format", "pt"}, {"note", "round trip"}});
  auto st = io::SafeTensors::open(path);
  EXPECT_EQ(st.metadata().at("format"), "pt");
  EXPECT_EQ(st.metadata().at("note"), "round trip");
  ASSERT_EQ(st.tensors().size(), in.size());
  for (const auto& [name, t] : in) {
    SCOPED_TRACE(name);
    Tensor r = st.get(name);
    EXPECT_EQ(r.dtype(), t.dtype());
    EXPECT_EQ(r.shape(), t.shape());
    ASSERT_EQ(r.nbytes(), t.nbytes());
    EXPECT_EQ(std::memcmp(r.raw(), t.raw(), t.nbytes()), 0);
    // Widest-first ordering makes every tensor aligned, so each is a view of the file.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r.raw()) % dtype_size(r.dtype()), 0u);
  }
  auto store = io::open_weights(path);
  EXPECT_EQ(store->format(), "safetensors");
  EXPECT_EQ(store->names().size(), in.size());
  EXPECT_EQ(store->load("b.f32").to_vector(), in[1].second.to_vector());
}

TEST(Safetensors, MisalignedTensorIsCopiedWithTheRightValues) {
  // A 3-byte header puts the f32 data at file offset 11: valid, but not a usable float pointer.
  std::vector<float> v{1.5f, -2.f};
  std::string data(reinterpret_cast<const char*>(v.data()), 8);
  std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  auto st = parse(st_file(header + " ", data));
  Tensor t = st.get("x");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 4, 0u);
  EXPECT_EQ(t.to_vector(), v);
}

TEST(Safetensors, FixturesParse) {
  for (const char* f : {"wan21/dit_t2v.safetensors", "wan21/vae.safetensors", "wan21/t5.io.safetensors"}) {
    auto st = io::SafeTensors::open(test::fixture(f));
    EXPECT_FALSE(st.tensors().empty()) << f;
  }
}

TEST(SafetensorsCorrupt, Table) {
  const std::string t1 = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string good = st_file("{" + t1 + "}", std::string(8, '\1'));
  ASSERT_NO_THROW(parse(good));
  auto one = [](const std::string& dtype, const std::string& shape, const std::string& offs) {
    return R"({"t":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offs + "}}";
  };
  struct Case {
    const char* what;
    std::string bytes;
    std::string needle;
  };
  const std::vector<Case> cases{
      {"shorter than 8 bytes", "abc", "too short"},
      {"header length over 100 MB", st_file("{}", "", 200'000'000), "limit is 100 MB"},
      {"header length near 2^64", st_file("{}", "", ~uint64_t{0} - 3), "limit is 100 MB"},
      {"header past EOF", st_file("{}", "", 1000), "truncated"},
      {"non-UTF-8 header", st_file("{\"\xff\":1}"), "not UTF-8"},
      {"not JSON", st_file("{not json"), "not valid JSON"},
      {"JSON array", st_file("[1,2]"), "not a JSON object"},
      {"JSON string", st_file("\"x\""), "not a JSON object"},
      {"empty header", st_file(""), "not a JSON object"},
      {"trailing garbage in the header", st_file("{} x"), "not valid JSON"},
      {"duplicate names", st_file("{" + t1 + "," + t1 + "}", std::string(8, '\1')), "twice"},
      {"tensor not an object", st_file(R"({"t":[1]})"), "not described by an object"},
      {"unknown field", st_file(R"({"t":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":1}})", "abcd"), "unknown field"},
      {"missing dtype", st_file(R"({"t":{"shape":[],"data_offsets":[0,4]}})", "abcd"), "no dtype"},
      {"unknown dtype", st_file(one("Q4", "[2]", "[0,8]"), std::string(8, '\1')), "Q4"},
      {"float64 dtype", st_file(one("F64", "[1]", "[0,8]"), std::string(8, '\1')), "F64"},
      {"rank 9", st_file(one("U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]"), "a"), "rank 9"},
      {"negative dim", st_file(one("U8", "[-1]", "[0,1]"), "a"), "non-negative"},
      {"float dim", st_file(one("U8", "[1.0]", "[0,1]"), "a"), "non-negative"},
      {"string dim", st_file(one("U8", "[\"1\"]", "[0,1]"), "a"), "non-negative"},
      {"dim over 2^64", st_file(one("U8", "[18446744073709551616]", "[0,1]"), "a"), "non-negative"},
      {"dim over 2^63", st_file(one("U8", "[9223372036854775808]", "[0,1]"), "a"), "absurd"},
      {"shape overflowing 64 bits", st_file(one("F32", "[4294967296,4294967296,16]", "[0,8]"), std::string(8, '\1')),
       "overflows"},
      {"shape past the file", st_file(one("F32", "[65536,65536]", "[0,8]"), std::string(8, '\1')), "larger than the file"},
      {"empty shape overflowing 64 bits", st_file(one("F32", "[4294967296,4294967296,0]", "[0,0]")), "overflows"},
      {"byte size != shape x dtype", st_file(one("F32", "[3]", "[0,8]"), std::string(12, '\1')), "needs 12"},
      {"negative offset", st_file(one("U8", "[1]", "[-1,0]"), "a"), "non-negative"},
      {"one offset", st_file(one("U8", "[1]", "[0]"), "a"), "data_offsets"},
      {"end before begin", st_file(one("U8", "[0]", "[1,0]"), "a"), "ends before it begins"},
      {"gap between tensors",
       st_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})", "abc"),
       "a gap"},
      {"overlapping tensors",
       st_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", "abc"),
       "overlapping"},
      {"aliased tensors",
       st_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "ab"),
       "overlapping"},
      {"offsets past the file", st_file(one("U8", "[4]", "[0,4]"), "ab"), "larger than the file"},
      {"trailing bytes", st_file("{" + t1 + "}", std::string(9, '\1')), "trailing bytes"},
      {"data with no tensors", st_file("{}", "x"), "trailing bytes"},
      {"truncated file", good.substr(0, good.size() - 3), "larger than the file"},
      {"__metadata__ not an object", st_file(R"({"__metadata__":"x"})"), "__metadata__"},
      {"__metadata__ value a number", st_file(R"({"__metadata__":{"a":1}})"), "not a string"},
      {"__metadata__ value nested", st_file(R"({"__metadata__":{"a":{"b":"c"}}})"), "not a string"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    try {
      auto st = parse(c.bytes);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadFile) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.needle), std::string::npos) << e.what();
    }
  }
}

TEST(SafetensorsCorrupt, EveryTruncationAndFlipIsCleanOnAFixture) {
  const std::string good = read_all(test::fixture("wan21/t5.io.safetensors"));
  ASSERT_GT(good.size(), 100u);
  const uint64_t n = static_cast<uint8_t>(good[0]) | (static_cast<uint64_t>(static_cast<uint8_t>(good[1])) << 8);
  for (size_t cut = 0; cut < n + 16; cut += 3) {
    EXPECT_THROW(parse(good.substr(0, cut)), Error) << cut;
  }
  for (size_t i = 0; i < 8 + n; ++i) {
    std::string b = good;
    b[i] = static_cast<char>(b[i] ^ 0x21);
    try {
      auto st = parse(b);
      for (const auto& t : st.tensors()) st.get(t.name).to_vector();
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadFile) << i << ": " << e.what();
    }
  }
}

// ---- sharded indexes

struct Shards {
  std::string dir = test::temp_dir();
  Tensor a = test::random_tensor({2, 3}, 1), b = test::random_tensor({4}, 2), c = test::random_tensor({1, 1}, 3);
  Shards() {
    io::write_safetensors(dir + "/m-1.safetensors", {{"a", a}, {"b", b}});
    io::write_safetensors(dir + "/m-2.safetensors", {{"c", c}});
  }
  std::string index(const std::string& weight_map) {
    const std::string p = dir + "/m.safetensors.index.json";
    write_all(p, R"({"metadata":{"total_size":40},"weight_map":)" + weight_map + "}");
    return p;
  }
};

void expect_index_error(const std::string& path, ErrorKind kind, const std::string& needle) {
  try {
    auto s = io::open_weights(path);
    ADD_FAILURE() << "accepted " << path;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ShardedIndex, Works) {
  Shards s;
  auto w = io::open_weights(s.index(R"({"a":"m-1.safetensors","b":"m-1.safetensors","c":"m-2.safetensors"})"));
  EXPECT_EQ(w->format(), "safetensors index (2 shards)");
  EXPECT_EQ(w->names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(w->load("a").to_vector(), s.a.to_vector());
  EXPECT_EQ(w->load("c").to_vector(), s.c.to_vector());
  EXPECT_EQ(w->meta("b").shape, (Shape{4}));
  EXPECT_FALSE(w->has("d"));
}

TEST(ShardedIndex, FromBytes) {
  Shards s;
  const std::string json = R"({"weight_map":{"a":"m-1.safetensors","b":"m-1.safetensors","c":"m-2.safetensors"}})";
  auto w = io::open_safetensors_index(io::MappedFile::from_bytes(json.data(), json.size(), s.dir + "/x.index.json"));
  EXPECT_EQ(w->names().size(), 3u);
}

TEST(ShardedIndex, Refusals) {
  Shards s;
  std::filesystem::create_directories(s.dir + "/sub");
  io::write_safetensors(s.dir + "/sub/m-3.safetensors", {{"c", s.c}});
  expect_index_error(s.index(R"({"a":"/etc/passwd"})"), ErrorKind::BadFile, "absolute");
  expect_index_error(s.index(R"({"a":"../m-1.safetensors"})"), ErrorKind::BadFile, "leaves the model folder");
  expect_index_error(s.index(R"({"c":"sub/../../m-2.safetensors"})"), ErrorKind::BadFile, "leaves the model folder");
  expect_index_error(s.index(R"({"a":"m-1.safetensors","b":"m-1.safetensors","c":"m-9.safetensors"})"),
                     ErrorKind::NotFound, "m-9.safetensors");
  expect_index_error(s.index(R"({"a":"m-2.safetensors","b":"m-1.safetensors","c":"m-2.safetensors"})"),
                     ErrorKind::BadFile, "says tensor \"a\" is in m-2.safetensors");
  expect_index_error(s.index(R"({"a":"m-1.safetensors","c":"m-2.safetensors"})"), ErrorKind::BadFile,
                     "holds tensor \"b\", which the index does not list");
  expect_index_error(s.index(R"({"a":1})"), ErrorKind::BadFile, "not a file name");
  expect_index_error(s.index(R"([])"), ErrorKind::BadFile, "weight_map");
  write_all(s.dir + "/broken.index.json", "{\"weight_map\":");
  expect_index_error(s.dir + "/broken.index.json", ErrorKind::BadFile, "not valid JSON");
  // A subfolder inside the model folder is fine.
  EXPECT_NO_THROW(io::open_weights(s.index(R"({"a":"m-1.safetensors","b":"m-1.safetensors","c":"sub/m-3.safetensors"})")));
}

}  // namespace
}  // namespace x2v
