// Writes the starting corpora for the fuzz targets from the golden fixtures, so that no corpus is
// committed: fuzz_seeds FIXTURES_DIR OUT_DIR -> OUT_DIR/{safetensors,pth,index}/...
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "io/pth.h"
#include "io/safetensors.h"
#include "io/pth_builder.h"  // tests/io/

namespace fs = std::filesystem;
using namespace x2v;

namespace {

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) fail(ErrorKind::Io, "cannot write ", p.string());
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail(ErrorKind::NotFound, "cannot read ", p.string());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const char* storage_class(DType t) {
  switch (t) {
    case DType::F32: return "FloatStorage";
    case DType::F16: return "HalfStorage";
    case DType::BF16: return "BFloat16Storage";
    case DType::I64: return "LongStorage";
    case DType::I32: return "IntStorage";
    case DType::U8: return "ByteStorage";
    case DType::I8: return "CharStorage";
    case DType::BOOL: return "BoolStorage";
    case DType::F8E4M3: return "Float8_e4m3fnStorage";
    case DType::F8E5M2: return "Float8_e5m2Storage";
  }
  return "FloatStorage";
}

// The few smallest tensors of a fixture: real names, dtypes and values in a small seed.
std::vector<std::pair<std::string, Tensor>> smallest(const io::SafeTensors& st, size_t n) {
  std::vector<io::TensorInfo> ts = st.tensors();
  std::sort(ts.begin(), ts.end(), [](const auto& a, const auto& b) { return a.end - a.begin < b.end - b.begin; });
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < ts.size() && i < n; ++i) out.emplace_back(ts[i].name, st.get(ts[i].name).clone());
  return out;
}

std::string pth_of(const std::vector<std::pair<std::string, Tensor>>& tensors, bool wrap, bool zip64) {
  std::vector<test::FakeTensor> fakes;
  std::map<std::string, std::string> storages;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i].second;
    test::FakeTensor f;
    f.name = tensors[i].first;
    f.storage_type = storage_class(t.dtype());
    f.key = std::to_string(i);
    f.storage_numel = t.numel();
    f.size = t.shape();
    int64_t stride = 1;
    f.stride.assign(t.shape().size(), 1);
    for (size_t d = t.shape().size(); d-- > 0;) {
      f.stride[d] = stride;
      stride *= t.shape()[d];
    }
    fakes.push_back(f);
    storages[f.key] = std::string(static_cast<const char*>(t.raw()), t.nbytes());
  }
  // A transposed view of the first tensor, sharing its storage.
  if (!fakes.empty() && fakes[0].size.size() == 2) {
    test::FakeTensor v = fakes[0];
    v.name += ".T";
    std::swap(v.size[0], v.size[1]);
    v.stride = {1, fakes[0].size[1]};
    fakes.push_back(v);
  }
  return test::make_pth(test::state_dict_pickle(fakes, wrap), storages, zip64);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_seeds FIXTURES_DIR OUT_DIR\n");
    return 2;
  }
  try {
    const fs::path fixtures = argv[1], out = argv[2];
    for (const char* d : {"safetensors", "pth", "index"}) fs::create_directories(out / d);
    int n = 0;
    for (const char* f : {"t5.safetensors", "clip.safetensors", "vae.safetensors", "dit_t2v.safetensors",
                          "t5.io.safetensors"}) {
      auto st = io::SafeTensors::open((fixtures / "wan21" / f).string());
      auto small = smallest(st, 4);
      const std::string tag = std::to_string(n++);
      io::write_safetensors((out / "safetensors" / ("seed" + tag + ".safetensors")).string(), small, {{"format", "pt"}});
      write_file(out / "pth" / ("seed" + tag + ".pth"), pth_of(small, false, false));
      write_file(out / "pth" / ("seed" + tag + "-nested.pth"), pth_of(small, true, false));
      write_file(out / "pth" / ("seed" + tag + "-zip64.pth"), pth_of(small, false, true));
    }
    io::write_safetensors((out / "safetensors" / "dtypes.safetensors").string(),
                          {{"scalar", Tensor::scalar_f32(1)},
                           {"empty", Tensor::empty({0, 3}, DType::BF16)},
                           {"ids", Tensor::scalar_f32(3).to(DType::I64)},
                           {"u8", Tensor::from_f32({1, 2, 3}, {3}).to(DType::U8)}});
    // The smallest real torch.save output, as written by PyTorch itself.
    write_file(out / "pth" / "t5.bf16.pth", read_file(fixtures / "wan21" / "t5.bf16.pth"));
    // Indexes for the shards fuzz_index_json writes: valid, wrong shard, escaping path.
    const std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
    write_file(out / "index" / "valid.json",
               R"({"metadata":{"total_size":28},"weight_map":{"a":")" + s1 + R"(","b":")" + s1 + R"(","c":")" + s2 + "\"}}");
    write_file(out / "index" / "wrong.json", R"({"weight_map":{"a":")" + s2 + R"(","b":")" + s1 + R"(","c":")" + s2 + "\"}}");
    write_file(out / "index" / "escape.json", R"({"weight_map":{"a":"../)" + s1 + "\"}}");
  } catch (const Error& e) {
    std::fprintf(stderr, "fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
