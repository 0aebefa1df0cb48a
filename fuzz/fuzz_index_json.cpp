// Arbitrary bytes as a `*.safetensors.index.json`, resolved against a folder holding two real
// shards (written once at start-up), so valid-looking indexes reach the shard checks.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/weights.h"

namespace {
std::string g_dir;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "x2v-fuzz-index-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) std::abort();
  g_dir = tmpl;
  using x2v::Tensor;
  x2v::io::write_safetensors(g_dir + "/model-00001-of-00002.safetensors",
                             {{"a", Tensor::from_f32({1, 2, 3, 4}, {2, 2})}, {"b", Tensor::scalar_f32(5)}});
  x2v::io::write_safetensors(g_dir + "/model-00002-of-00002.safetensors", {{"c", Tensor::from_f32({6, 7}, {2})}});
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(g_dir, ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = x2v::io::MappedFile::from_bytes(data, size, g_dir + "/model.safetensors.index.json");
  try {
    auto store = x2v::io::open_safetensors_index(file);
    for (const auto& n : store->names()) store->load(n).to_vector();
  } catch (const x2v::Error&) {
  }
  return 0;
}
